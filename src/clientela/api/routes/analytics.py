"""/api/v1/rfm: RFM groups and the R×F grid."""

from __future__ import annotations

from fastapi import APIRouter

from clientela.analytics import queries
from clientela.analytics.schemas import RfmOut
from clientela.api.deps import ReadSessionDep, SecretKeyDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["analytics"])


@router.get("/rfm", response_model=RfmOut)
def rfm(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep) -> RfmOut:
    """Each RFM group with its size and revenue share, and customers by R and F score, as
    last computed (nightly, or by `clientela rfm compute`)."""
    return queries.rfm(session=session, currency=settings.store_currency)
