FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . && useradd --create-home makegood && mkdir /data \
    && chown makegood /data
USER makegood
ENV MAKEGOOD_DATA_DIR=/data MAKEGOOD_LOG_FORMAT=json
CMD ["python", "-m", "worker"]
