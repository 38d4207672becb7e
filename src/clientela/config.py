"""One Settings object, read from CLIENTELA_* environment variables."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clientela.core.money import Exchange

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
    store_currency: str = Field(
        "BRL", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency of reports and profiles."
    )
    currency_rates: dict[str, Decimal] = Field(
        default_factory=dict, description="JSON object: store-currency units one unit of "
        'each other currency buys, e.g. {"USD": "5.10"}.'
    )
    cart_abandon_minutes: int = Field(
        60, ge=1, description="Minutes after its last change that an open cart with no "
        "order counts as abandoned."
    )
    clv_horizon_months: int = Field(
        12, ge=1, le=120, description="Months ahead that predicted lifetime value and "
        "expected orders cover."
    )
    clv_monthly_discount_rate: float = Field(
        0.01, ge=0, le=1, description="Monthly discount rate of predicted lifetime value."
    )
    shopify_webhook_secret: str | None = Field(
        None, description="The Shopify app's secret that signs its webhooks; unset, the "
        "Shopify webhook endpoint answers 404."
    )
    woocommerce_webhook_secret: str | None = Field(
        None, description="The secret of the WooCommerce webhooks; unset, their endpoint "
        "answers 404."
    )
    redis_url: str | None = Field(
        None, description="Redis for the background work queue (`redis://host:6379/0`), "
        "needed when workers run on several hosts; unset, the queue is the SQLite file "
        "DATA_DIR/worker.db."
    )
    embedded_worker: bool = Field(
        True, description="`clientela serve` runs the background worker beside itself; set "
        "false when `clientela worker` processes run elsewhere."
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", description="Address customers reach Clientela at, for "
        "unsubscribe, tracking and preference links in e-mails; campaigns need https in production."
    )
    smtp_host: str | None = Field(
        None, description="SMTP relay that sends e-mail; unset, messages are written as .eml "
        "files under DATA_DIR/outbox and listed in the dashboard."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of the SMTP relay.")
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="How the SMTP connection is encrypted: STARTTLS, TLS from the "
        "start (port 465), or none (local relays only)."
    )
    smtp_username: str | None = Field(None, description="SMTP user name, if the relay asks.")
    smtp_password: str | None = Field(None, description="SMTP password, if the relay asks.")
    smtp_connections: int = Field(
        4, ge=1, le=64, description="SMTP connections used at once by one sending worker."
    )
    mail_from: str = Field(
        "Clientela <no-reply@localhost>", description="Sender of every e-mail (From:)."
    )
    shop_name: str = Field("Minha Loja", description="The shop's name in e-mails and pages.")
    shop_color: str = Field(
        "#0f766e", pattern=r"^#[0-9a-fA-F]{6}$", description="The shop's colour in e-mails."
    )
    shop_logo_url: str | None = Field(None, description="Logo shown at the top of e-mails.")
    shop_address: str | None = Field(
        None, description="Postal address in the footer of marketing e-mails."
    )
    mail_events_secret: str | None = Field(
        None, description="Secret that signs bounce and complaint reports posted to "
        "/integrations/email/events; unset, that endpoint answers 404."
    )
    marketing_cap_per_week: int = Field(
        3, ge=1, description="Most marketing e-mails (campaigns and scenarios together) one "
        "customer receives in any 7 days."
    )
    ingest_socket: Path | None = Field(
        None, description="Unix socket of the ingestion writer process. `clientela serve` "
        "sets it on SQLite for its HTTP workers; unset, each process writes events itself."
    )

    @field_validator("currency_rates")
    @classmethod
    def _rates_are_positive(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in rates.items():
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"{code!r} is not a three-letter ISO 4217 code")
            if not rate.is_finite() or rate <= 0:
                raise ValueError(f"the rate for {code} must be a positive number")
        return rates

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.env != "development" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ValueError(
                "CLIENTELA_SECRET_KEY must be set to a private value outside development"
            )
        return self

    @model_validator(mode="after")
    def _public_url_is_web(self) -> Settings:
        if not self.public_url.startswith(("http://", "https://")):
            raise ValueError("CLIENTELA_PUBLIC_URL must start with http:// or https://")
        return self

    @property
    def exchange(self) -> Exchange:
        """The store currency and the rates to it, for order totals."""
        return Exchange(store_currency=self.store_currency, rates=self.currency_rates)

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
