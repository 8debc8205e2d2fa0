"""The receipt index as an activity: a case registers each claim and learns of earlier ones.

Run from the claim update's handler, so the case's history records what the index answered
(the duplicate it was refused or held for, the near duplicates it was flagged with), and a
replay decides the same without asking the index again.
"""

from __future__ import annotations

from temporalio import activity

from makegood.activities.calls import classified
from makegood.adapters.blobs import BlobStore
from makegood.adapters.receipt_index import ClaimIndex
from makegood.domain import calls
from makegood.domain.receipts import ClaimRegistration, ReceiptFindings, blob_key


class ReceiptActivities:
    def __init__(self, index: ClaimIndex, store: BlobStore) -> None:
        self.index = index
        self.store = store

    @activity.defn(name=calls.REGISTER_CLAIM.name)
    async def register_claim(self, req: ClaimRegistration) -> ReceiptFindings:
        with classified(calls.REGISTER_CLAIM.name) as bound:
            # The API checks the file is there before it sends the claim; this is the case's
            # own check, for a claim sent to Temporal some other way.
            uploaded = req.receipt_sha256 is None or await self.store.exists(
                blob_key(req.receipt_sha256)
            )
            found = await self.index.register(req, uploaded=uploaded)
            bound.info(
                "claim_registered",
                registered=found.registered,
                uploaded=found.uploaded,
                same_receipt=len(found.same_receipt),
                near=len(found.near),
            )
            return found
