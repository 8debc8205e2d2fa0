#!/bin/sh
# Makes the namespace Makegood runs in ready: created with its retention (or the retention set
# on an existing one) and Makegood's search attributes registered. Run by the temporal-setup job
# of docker-compose.yml (temporalio/admin-tools); the worker and the API start only once it has
# succeeded, so "healthy" means the namespace exists, not merely that a port is open.
set -eu
: "${TEMPORAL_ADDRESS:?the Temporal frontend, host:port}"
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
RETENTION=${RETENTION_DAYS:-30}d
: "${SEARCH_ATTRIBUTES:?Makegood's keyword search attributes, space-separated}"

tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "Temporal at $TEMPORAL_ADDRESS never became healthy"; exit 1; }
  sleep 2
done

if temporal operator namespace describe -n "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
  temporal operator namespace update -n "$NAMESPACE" --retention "$RETENTION" --address "$TEMPORAL_ADDRESS"
  echo "namespace $NAMESPACE: retention $RETENTION"
else
  temporal operator namespace create -n "$NAMESPACE" --retention "$RETENTION" --address "$TEMPORAL_ADDRESS"
  echo "namespace $NAMESPACE created, retention $RETENTION"
fi

known=$(temporal operator search-attribute list -n "$NAMESPACE" --address "$TEMPORAL_ADDRESS")
for name in $SEARCH_ATTRIBUTES; do
  if echo "$known" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create -n "$NAMESPACE" --name "$name" --type Keyword \
      --address "$TEMPORAL_ADDRESS"
  fi
done
echo "namespace $NAMESPACE is ready for Makegood"
