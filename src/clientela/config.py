"""One Settings object, read from CLIENTELA_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me-development-only"


class Settings(BaseSettings):
    """Every setting Clientela reads; each is documented in the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="CLIENTELA_", extra="ignore")

    env: Literal["development", "production", "test"] = Field(
        "development", description="Deployment kind; outside development defaults are refused."
    )
    data_dir: Path = Field(Path("var"), description="Folder for the SQLite file, outbox, uploads.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means the SQLite file DATA_DIR/clientela.db."
    )
    secret_key: str = Field(DEFAULT_SECRET_KEY, description="Signs sessions and tokens.")
    host: str = Field("127.0.0.1", description="Address `clientela serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `clientela serve` binds.")
    default_country: str = Field(
        "BR", min_length=2, max_length=2, description="Region for phone numbers without +code."
    )
    db_busy_timeout_ms: int = Field(
        5000, ge=0, description="How long a write waits for a lock before it fails (503)."
    )
    ingest_queue_limit: int = Field(
        50_000, ge=1, description="Events waiting to be written before ingestion answers 429."
    )
    ingest_group_events: int = Field(
        5_000, ge=1, description="Most events committed together in one group commit."
    )
    ingest_socket: Path | None = Field(
        None, description="Unix socket of the ingestion writer process. `clientela serve` "
        "sets it on SQLite for its HTTP workers; unset, each process writes events itself."
    )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.env != "development" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ValueError(
                "CLIENTELA_SECRET_KEY must be set to a private value outside development"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, with the embedded SQLite default filled in."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'clientela.db').resolve()}"



@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
