"""What routes receive besides their bodies: the Temporal client, the settings and playbooks
the app was made with, a case id from the path, and a caller the role table allows."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from temporalio.client import Client

from makegood.adapters.blobs import BlobStore
from makegood.api.auth import Allowed, Caller
from makegood.domain import contract, roles
from makegood.domain.playbook import PlaybookSet
from makegood.index import CaseIndex
from makegood.settings import Settings

CaseId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,80}$", description="case-<ticket id>")
]


def temporal(request: Request) -> Client:
    return request.app.state.client  # type: ignore[no-any-return]


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def playbooks(request: Request) -> PlaybookSet:
    return request.app.state.playbooks  # type: ignore[no-any-return]


def case_index(request: Request) -> CaseIndex:
    return request.app.state.index  # type: ignore[no-any-return]


def archive(request: Request) -> BlobStore:
    return request.app.state.archive  # type: ignore[no-any-return]


Temporal = Annotated[Client, Depends(temporal)]
Index = Annotated[CaseIndex, Depends(case_index)]
Archive = Annotated[BlobStore, Depends(archive)]
AppSettings = Annotated[Settings, Depends(settings)]
Playbooks = Annotated[PlaybookSet, Depends(playbooks)]

# One guard per thing a person does; who may do it is the role table's business alone.
MayOpen = Annotated[Caller, Depends(Allowed(roles.OPEN))]
MayList = Annotated[Caller, Depends(Allowed(roles.LIST))]
MayRead = Annotated[Caller, Depends(Allowed(roles.STATUS))]
MayAudit = Annotated[Caller, Depends(Allowed(roles.TIMELINE))]
MaySeeTrends = Annotated[Caller, Depends(Allowed(roles.TRENDS))]
MayAnswer = Annotated[Caller, Depends(Allowed(contract.ANSWER))]
MayClaim = Annotated[Caller, Depends(Allowed(contract.SUBMIT_CLAIM))]
MayDecide = Annotated[Caller, Depends(Allowed(contract.DECIDE))]
MayNote = Annotated[Caller, Depends(Allowed(contract.ADD_NOTE))]
MayAssign = Annotated[Caller, Depends(Allowed(contract.ASSIGN))]
MayEscalate = Annotated[Caller, Depends(Allowed(contract.ESCALATE))]
MayCancel = Annotated[Caller, Depends(Allowed(contract.CANCEL))]
