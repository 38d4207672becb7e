"""A made-up Brazilian online shop, generated with NumPy: catalog, customers and purchases.

Purchases follow the models the predictions issue fits (so that a fit on the demo finds
parameters near the ones it was made with):

- BG/NBD (Fader, Hardie & Lee 2005): while alive, a customer buys at a Poisson rate
  λ ~ Gamma(r, α) per week and, after each repeat purchase, drops out with probability
  p ~ Beta(a, b); the first purchase comes when the customer is acquired.
- Gamma-Gamma: each customer's mean spend is set by ν ~ Gamma(q, γ), and each purchase's
  value z ~ Gamma(p, ν).

The parameters are of the order published for CDNOW (weeks, US dollars), the spend
converted to reais. Calendar time is the model's time stretched by the shop's seasons
(Black Friday, Christmas, Mother's Day, ...), so a season has more purchases without
changing how many each customer makes. Everything is drawn from one seeded generator:
the same seed and the same day give the same shop.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]

WEEKS = 104  # two years of history
BGNBD = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.4}
REAIS_PER_DOLLAR = 5.0
BUYERS = 0.8  # the others signed up and have not bought yet
MAX_PURCHASES = 60

# (category path, what its products are called, lowest and highest price in reais)
CATEGORIES = (
    ("Calçados > Tênis", ("Tênis Corrida", "Tênis Casual", "Tênis Skate", "Tênis Trilha"),
     149, 599),
    ("Calçados > Sandálias", ("Sandália Rasteira", "Sandália Plataforma", "Chinelo"), 39, 199),
    ("Roupas > Camisetas", ("Camiseta Básica", "Camiseta Estampada", "Regata"), 39, 129),
    ("Roupas > Vestidos", ("Vestido Midi", "Vestido Longo", "Vestido Chemise"), 89, 349),
    ("Roupas > Jaquetas", ("Jaqueta Jeans", "Jaqueta Corta-vento", "Moletom"), 129, 499),
    ("Acessórios > Bolsas", ("Bolsa Tiracolo", "Mochila Urbana", "Bolsa de Praia"), 79, 399),
    ("Acessórios > Relógios", ("Relógio Digital", "Relógio Clássico", "Smartwatch"), 149, 1299),
    ("Casa > Cozinha", ("Garrafa Térmica", "Jogo de Panelas", "Cafeteira", "Caneca"), 29, 699),
    ("Beleza > Perfumes", ("Perfume Floral", "Perfume Amadeirado", "Body Splash"), 59, 599),
    ("Esporte > Fitness", ("Tapete de Yoga", "Halteres", "Garrafa Esportiva", "Elástico"),
     29, 399),
)
PRODUCTS_PER_CATEGORY = 24
BRANDS = ("Garoa", "Pampa", "Sertão", "Maré", "Cerrado", "Ipê", "Jangada", "Caatinga",
          "Araucária", "Mandacaru", "Pororoca", "Lençóis")
FINISHES = ("Preto", "Branco", "Azul", "Verde", "Areia", "Vinho", "Grafite", "Coral")

FEMALE = ("Ana", "Maria", "Juliana", "Camila", "Fernanda", "Beatriz", "Larissa", "Gabriela",
          "Mariana", "Patrícia", "Aline", "Letícia", "Natália", "Bruna", "Amanda", "Carolina",
          "Isabela", "Luana", "Rafaela", "Vitória", "Sofia", "Helena", "Alice", "Débora")
MALE = ("João", "Pedro", "Lucas", "Gabriel", "Rafael", "Mateus", "Gustavo", "Felipe",
        "Bruno", "Thiago", "Diego", "Rodrigo", "Eduardo", "Marcelo", "André", "Leonardo",
        "Vinícius", "Caio", "Daniel", "Henrique", "Otávio", "Samuel", "Davi", "Arthur")
LAST = ("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
        "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes",
        "Soares", "Fernandes", "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade",
        "Moreira", "Nunes", "Marques", "Machado", "Mendes", "Freitas", "Cardoso", "Araújo")
# (city, state or region, country, weight, phone area code or None outside Brazil)
CITIES = (
    ("São Paulo", "SP", "BR", 22, "11"), ("Rio de Janeiro", "RJ", "BR", 12, "21"),
    ("Belo Horizonte", "MG", "BR", 6, "31"), ("Brasília", "DF", "BR", 6, "61"),
    ("Salvador", "BA", "BR", 5, "71"), ("Fortaleza", "CE", "BR", 5, "85"),
    ("Curitiba", "PR", "BR", 5, "41"), ("Recife", "PE", "BR", 4, "81"),
    ("Porto Alegre", "RS", "BR", 4, "51"), ("Manaus", "AM", "BR", 3, "92"),
    ("Goiânia", "GO", "BR", 3, "62"), ("Belém", "PA", "BR", 3, "91"),
    ("Campinas", "SP", "BR", 3, "19"), ("Florianópolis", "SC", "BR", 2, "48"),
    ("Vitória", "ES", "BR", 2, "27"), ("Natal", "RN", "BR", 2, "84"),
    ("Lisboa", "Lisboa", "PT", 2, None), ("Porto", "Porto", "PT", 1, None),
    ("Buenos Aires", "CABA", "AR", 1, None), ("Montevideo", "Montevideo", "UY", 1, None),
    ("Miami", "FL", "US", 1, None), ("Luanda", "Luanda", "AO", 1, None),
)
# How often people shop at each local hour (Brasília, UTC-3): lunch and evening peaks.
HOURS = tuple((str(hour), weight) for hour, weight in enumerate(
    (2, 1, 1, 1, 1, 1, 2, 4, 6, 7, 7, 8, 10, 10, 8, 7, 7, 7, 8, 10, 13, 14, 11, 5)))
BRASILIA = timedelta(hours=-3)
CHANNELS = (("web", 0.62), ("app", 0.20), ("marketplace", 0.12), ("store", 0.06))
CONSENT = (("subscribed", 0.55), ("unsubscribed", 0.12), ("unknown", 0.33))


@dataclass(frozen=True, slots=True)
class Catalog:
    product_ids: list[str]
    names: list[str]
    categories: list[str]
    brands: list[str]
    prices: Ints  # cents
    category: Ints  # index into CATEGORIES
    by_category: list[Ints]  # product indexes of each category, cheapest first


@dataclass(frozen=True, slots=True)
class People:
    """Everyone who signed up, by number (0..n-1)."""

    first: list[str]
    last: list[str]
    gender: list[str]
    birthday: list[date]
    city: Ints  # index into CITIES
    phone: list[str | None]
    consent: list[str]
    favourite: Ints  # index into CATEGORIES
    signed_up: Floats  # days before the anchor
    hour: Ints  # the local hour (Brasília time) at which the person most likes to shop
    buyer: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.first)


@dataclass(frozen=True, slots=True)
class Purchases:
    """Every purchase, by person, oldest first; items flattened (`item_start` per purchase)."""

    person: Ints
    number: Ints  # the purchase's place among its person's, from 0
    days_ago: Floats
    channel: Ints  # index into CHANNELS
    fate: Ints  # 0 kept, 1 cancelled, 2 refunded whole, 3 one item refunded
    item_start: Ints  # len(person) + 1 offsets into the item arrays
    product: Ints
    quantity: Ints

    def __len__(self) -> int:
        return len(self.person)


@dataclass(frozen=True, slots=True)
class Shop:
    seed: int
    anchor: datetime  # the generated history ends here
    catalog: Catalog
    people: People
    purchases: Purchases


def generate(*, customers: int, seed: int, anchor: datetime) -> Shop:
    """The shop for this seed: `customers` people, two years of purchases up to `anchor`."""
    rng = np.random.default_rng(seed)
    catalog = _catalog(rng)
    people = _people(rng, customers)
    return Shop(seed=seed, anchor=anchor, catalog=catalog, people=people,
                purchases=_purchases(rng, people, catalog, anchor))


def ascii_text(text: str) -> str:
    """`text` without accents (João -> Joao), as e-mail addresses are written."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _choice(rng: np.random.Generator, weighted: tuple[tuple[str, float], ...], n: int) -> Ints:
    weights = np.array([weight for _name, weight in weighted], dtype=float)
    return rng.choice(len(weighted), size=n, p=weights / weights.sum()).astype(np.int64)


def _catalog(rng: np.random.Generator) -> Catalog:
    ids, names, paths, brands, prices, category = [], [], [], [], [], []
    for index, (path, nouns, low, high) in enumerate(CATEGORIES):
        # Prices spread evenly on a log scale between the category's bounds, in x,90 reais.
        reais = np.exp(rng.uniform(np.log(low), np.log(high), PRODUCTS_PER_CATEGORY))
        for number, price in enumerate(np.floor(reais)):
            noun = nouns[number % len(nouns)]
            ids.append(f"P{index:02d}{number:03d}")
            names.append(f"{noun} {FINISHES[int(rng.integers(len(FINISHES)))]}")
            paths.append(path)
            brands.append(BRANDS[int(rng.integers(len(BRANDS)))])
            prices.append(int(price) * 100 + 90)
            category.append(index)
    price_array = np.array(prices, dtype=np.int64)
    category_array = np.array(category, dtype=np.int64)
    by_category = [np.flatnonzero(category_array == index)[
        np.argsort(price_array[category_array == index], kind="stable")]
        for index in range(len(CATEGORIES))]
    return Catalog(ids, names, paths, brands, price_array, category_array, by_category)


def _people(rng: np.random.Generator, n: int) -> People:
    female = rng.random(n) < 0.56
    unstated = rng.random(n) < 0.02
    first = [FEMALE[i] if f else MALE[i] for i, f in
             zip(rng.integers(len(FEMALE), size=n), female, strict=True)]
    last = [LAST[i] for i in rng.integers(len(LAST), size=n)]
    gender = ["" if u else ("female" if f else "male") for f, u in
              zip(female, unstated, strict=True)]
    ages = np.clip(rng.normal(36, 11, n), 18, 80)
    born = [date(2000, 1, 1) + timedelta(days=int(d)) for d in
            (-(ages - 26) * 365.25 + rng.integers(0, 365, n)).astype(np.int64)]
    weights = tuple((city[0], float(city[3])) for city in CITIES)
    city = _choice(rng, weights, n)
    lines = rng.integers(10_000_000, 99_999_999, size=n)
    phone = [f"+55 {CITIES[c][4]} 9{str(line)[:4]}-{str(line)[4:]}" if CITIES[c][4] else None
             for c, line in zip(city, lines, strict=True)]
    consent = [CONSENT[i][0] for i in _choice(rng, CONSENT, n)]
    favourite = rng.integers(len(CATEGORIES), size=n).astype(np.int64)
    signed_up = rng.uniform(0, WEEKS * 7, n)
    buyer = rng.random(n) < BUYERS
    hour = _choice(rng, HOURS, n)
    return People(first, last, gender, born, city, phone, consent, favourite, signed_up, hour,
                  buyer)


def _purchases(rng: np.random.Generator, people: People, catalog: Catalog,
               anchor: datetime) -> Purchases:
    buyers = np.flatnonzero(people.buyer)
    n = len(buyers)
    rate = rng.gamma(BGNBD["r"], 1 / BGNBD["alpha"], n)  # purchases per week while alive
    dropout = rng.beta(BGNBD["a"], BGNBD["b"], n)
    # Model time runs in weeks from the start of the history; acquisition is the first buy.
    start = WEEKS - _model_weeks(people.signed_up[buyers], anchor)
    person_chunks, week_chunks = [buyers], [start]
    alive, moment = np.ones(n, dtype=bool), start.copy()
    for _ in range(MAX_PURCHASES - 1):
        index = np.flatnonzero(alive)
        if not len(index):
            break
        moment[index] += rng.exponential(1 / rate[index])
        bought = index[moment[index] < WEEKS]
        person_chunks.append(buyers[bought])
        week_chunks.append(moment[bought])
        alive[index] = (moment[index] < WEEKS) & (rng.random(len(index)) >= dropout[index])
    person = np.concatenate(person_chunks)
    weeks = np.concatenate(week_chunks)
    days_ago = _clock_time(rng, _calendar_days_ago(WEEKS - weeks, anchor),
                           people.hour[person], anchor)
    # Each person's purchases oldest first (with their final times), numbered from 0.
    order = np.lexsort((-days_ago, person))
    person, days_ago = person[order], days_ago[order]
    number = np.arange(len(person)) - np.searchsorted(person, person)
    # Gamma-Gamma spend: the person's scale, then each purchase's value (dollars -> reais).
    scale = np.zeros(len(people))
    scale[buyers] = rng.gamma(GAMMA_GAMMA["q"], 1 / GAMMA_GAMMA["gamma"], n)
    value = rng.gamma(GAMMA_GAMMA["p"], 1 / scale[person]) * REAIS_PER_DOLLAR * 100
    item_start, product, quantity = _items(rng, catalog, people.favourite[person], value)
    fate = rng.choice(4, size=len(person), p=[0.92, 0.03, 0.03, 0.02]).astype(np.int64)
    channel = _choice(rng, CHANNELS, len(person))
    chronological = np.argsort(-days_ago, kind="stable")
    return _reordered(Purchases(person, number, days_ago, channel, fate, item_start, product,
                                quantity), chronological)


def _items(rng: np.random.Generator, catalog: Catalog, favourite: Ints, value: Floats
           ) -> tuple[Ints, Ints, Ints]:
    """Items adding up to about each purchase's value: 1-5 lines, mostly from the favourite
    category (from the whole catalog when no product there is priced near the line's share),
    each the product priced nearest its share, in the quantity that comes closest."""
    lines = np.minimum(1 + rng.poisson(0.6, len(value)), 5)
    owner = np.repeat(np.arange(len(value)), lines)
    category = np.where(rng.random(len(owner)) < 0.7, favourite[owner],
                        rng.integers(len(CATEGORIES), size=len(owner)))
    target = value[owner] / lines[owner] * rng.uniform(0.8, 1.2, len(owner))
    product = _nearest(catalog, np.argsort(catalog.prices, kind="stable"), target)
    for index, members in enumerate(catalog.by_category):
        prices = catalog.prices[members]
        here = np.flatnonzero((category == index) & (target >= prices[0] / 2)
                              & (target <= prices[-1] * 2))
        product[here] = _nearest(catalog, members, target[here])
    quantity = np.clip(np.rint(target / catalog.prices[product]), 1, 3).astype(np.int64)
    item_start = np.concatenate([[0], np.cumsum(lines)]).astype(np.int64)
    return item_start, product, quantity


def _nearest(catalog: Catalog, members: Ints, target: Floats) -> Ints:
    """For each target price, the product of `members` (cheapest first) priced nearest."""
    prices = catalog.prices[members]
    above = np.clip(np.searchsorted(prices, target), 0, len(members) - 1)
    below = np.clip(above - 1, 0, len(members) - 1)
    closer = np.abs(prices[below] - target) < np.abs(prices[above] - target)
    picked: Ints = members[np.where(closer, below, above)]
    return picked


def _reordered(purchases: Purchases, order: Ints) -> Purchases:
    """The purchases in `order`, their items moved with them."""
    lines = np.diff(purchases.item_start)[order]
    starts = purchases.item_start[:-1][order]
    item = np.repeat(starts - np.concatenate([[0], np.cumsum(lines)[:-1]]), lines) \
        + np.arange(lines.sum())
    return Purchases(purchases.person[order], purchases.number[order],
                     purchases.days_ago[order], purchases.channel[order],
                     purchases.fate[order],
                     np.concatenate([[0], np.cumsum(lines)]).astype(np.int64),
                     purchases.product[item], purchases.quantity[item])


# --- seasons ---------------------------------------------------------------------------------

def _season(day: date) -> float:
    """How busy the shop is on `day`, next to an ordinary day."""
    if day.month == 11 and 20 <= day.day <= 30:
        return 3.0  # Black Friday week
    if day.month == 12 and day.day <= 23:
        return 1.7
    if day.month == 5 and day.day <= 12:
        return 1.8  # Mother's Day
    if day.month == 6 and day.day <= 12:
        return 1.5  # Dia dos Namorados
    if day.month == 3 and 10 <= day.day <= 15:
        return 1.5  # Dia do Consumidor
    if day.month in (1, 2):
        return 0.8
    return 1.0


def _busyness(anchor: datetime) -> Floats:
    """Cumulative busyness of the history's days, oldest first, scaled to end at WEEKS."""
    first = anchor.date() - timedelta(days=WEEKS * 7)
    daily = np.array([_season(first + timedelta(days=d)) for d in range(WEEKS * 7)])
    cumulative: Floats = np.concatenate([[0.0], np.cumsum(daily)]) * WEEKS / daily.sum()
    return cumulative


def _model_weeks(days_ago: Floats, anchor: datetime) -> Floats:
    """Calendar days before the anchor -> model weeks before it."""
    cumulative = _busyness(anchor)
    days = np.arange(len(cumulative), dtype=float)
    weeks: Floats = cumulative[-1] - np.interp(WEEKS * 7 - days_ago, days, cumulative)
    return weeks


def _calendar_days_ago(weeks_ago: Floats, anchor: datetime) -> Floats:
    """Model weeks before the anchor -> calendar days before it."""
    cumulative = _busyness(anchor)
    days = np.arange(len(cumulative), dtype=float)
    days_ago: Floats = WEEKS * 7 - np.interp(cumulative[-1] - weeks_ago, cumulative, days)
    return days_ago


def _clock_time(rng: np.random.Generator, days_ago: Floats, hour: Ints, anchor: datetime
                ) -> Floats:
    """Days before the anchor with the time of day set: the person's favourite hour most
    of the time, else any, weighted by the shop's hours; never after the anchor."""
    n = len(days_ago)
    local = np.where(rng.random(n) < 0.6, hour, _choice(rng, HOURS, n))
    local_anchor = anchor + BRASILIA
    anchor_hours = local_anchor.hour + local_anchor.minute / 60
    # Local midnights crossed going back, then the chosen local time on that day.
    back = np.maximum(np.ceil(days_ago - anchor_hours / 24), 0)
    hours_into_day = local + rng.uniform(0, 1, n)
    ago = back + (anchor_hours - hours_into_day) / 24
    clocked: Floats = np.where(ago < 0, ago + 1, ago)
    return clocked


def anchor_for(now: datetime) -> datetime:
    """The end of the generated history: the start of the current hour (UTC), so that the
    same seed within the hour gives the same shop."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
