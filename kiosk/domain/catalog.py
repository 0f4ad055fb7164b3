"""The catalog of the terminal's 108 service items, loaded from committed data.

`config/catalog/items.json` is produced from the seed gazette by
`scripts/build_catalog.py` and committed; the runtime never needs the seed.  Loading
validates every item strictly (one bad item would otherwise surface as a broken
screen in front of a citizen) and builds the pinyin search index once.

`implementation_code` is a PLACEHOLDER ("PLACEHOLDER-370306-<code>") until the
province's real 实施编码 for each item are loaded; do not send it to a real platform
as if it were real.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from kiosk.config import PROJECT_ROOT
from kiosk.domain.elicence import LICENCE_TYPES
from kiosk.domain.search import SearchIndex

__all__ = [
    "CatalogError", "Catalog", "Item", "Material", "FormField", "Provenance", "Source",
    "load_catalog", "DEFAULT_PATH", "KNOWN_DOMAINS", "FLOWS", "FIELD_TYPES", "ITEM_FIELDS",
]

DEFAULT_PATH = PROJECT_ROOT / "config" / "catalog" / "items.json"
SUPPORTED_VERSION = 1

#: The domains of the seed's lists plus those it names for the terminal's 108 items.
KNOWN_DOMAINS: tuple[str, ...] = (
    "人社", "医保", "民政", "卫健", "退役军人事务", "残疾人服务", "自然资源", "农业农村",
    "应急管理", "住建", "市政服务", "文化教育", "审批服务",
    "商事登记", "交通", "不动产", "税务", "公安",
)
FLOWS: tuple[str, ...] = ("query_print", "apply", "pay", "certify")
FIELD_TYPES: tuple[str, ...] = ("text", "phone", "date", "choice", "id_number", "bank_account",
                                "number")
SEED_LISTS: tuple[str, ...] = ("附件1", "附件3", "附件4", "outside seed", "seed text")
#: The JSON fields of one item, in order: the contract of `kiosk catalog ... --json`.
ITEM_FIELDS: tuple[str, ...] = (
    "code", "domain", "main_name", "sub_name", "category", "handling_form", "service_object",
    "item_type", "legal_limit", "promised_limit", "fee", "flow", "materials", "conditions",
    "requires_id", "citizen_code_allowed", "fields", "provenance", "implementation_code",
)


class CatalogError(ValueError):
    """The catalog data is unusable; the message names the item and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_NonEmpty = Field(min_length=1)


class Material(_Model):
    """One thing to bring (一次性告知); exempt_shared: need not be brought, the data is shared.

    ``licence_type`` (kiosk.domain.elicence.LICENCE_TYPES) names the electronic licence that can stand
    in for it: the materials screen offers 「调取电子证照」 before the camera. Absent when none can.
    """
    name: str = _NonEmpty
    required: StrictBool
    exempt_shared: StrictBool
    note: str
    licence_type: str | None = None

    @field_validator("licence_type")
    @classmethod
    def _known_licence_type(cls, v: str | None) -> str | None:
        if v is not None and v not in LICENCE_TYPES:
            raise ValueError(f"unknown licence type {v!r} (known: {', '.join(LICENCE_TYPES)})")
        return v

    @model_serializer(mode="wrap")
    def _drop_absent_licence_type(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("licence_type") is None:
            data.pop("licence_type", None)
        return data


class FormField(_Model):
    """A typed form field; validated by kiosk.domain.fields on the terminal and the platform simulator."""
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = _NonEmpty
    type: Literal["text", "phone", "date", "choice", "id_number", "bank_account", "number"]
    required: StrictBool
    choices: tuple[str, ...]

    @model_validator(mode="after")
    def _choices_match_type(self) -> FormField:
        if self.type == "choice":
            if len(self.choices) < 2:
                raise ValueError(f"choice field {self.name!r} needs at least two choices")
            if len(set(self.choices)) != len(self.choices) or not all(self.choices):
                raise ValueError(f"choice field {self.name!r} has empty or repeated choices")
        elif self.choices:
            raise ValueError(f"field {self.name!r} of type {self.type} must not have choices")
        return self


_ListName = Literal["附件1", "附件3", "附件4", "outside seed", "seed text"]
#: provenance lists without rows: items outside the seed's lists, and items the seed's text promises
_ROWLESS = ("outside seed", "seed text")


class Source(_Model):
    list: _ListName
    row: StrictInt | None

    @model_validator(mode="after")
    def _row_iff_seed(self) -> Source:
        if (self.list in _ROWLESS) != (self.row is None):
            raise ValueError("row must be a number for seed lists and null for 'outside seed' and 'seed text'")
        return self


class Provenance(_Model):
    """Where the item comes from: primary list and row, plus every list that has it.

    ``seed text``: an item the seed promises in its text rather than its lists; ``quote`` is the
    seed's sentence (scripts/build_catalog.py checks it occurs in the seed) and ``basis`` its place.
    """
    list: _ListName
    row: StrictInt | None
    sources: tuple[Source, ...] = Field(min_length=1)
    domain_in_seed: str | None = None  # set when the terminal shows it under another domain
    repaired: tuple[str, ...] | None = None  # cells the build filled where the PDF lost them
    basis: str | None = None  # why an outside-seed item is in the catalog
    quote: str | None = None  # the seed's own sentence, for a "seed text" item

    @model_validator(mode="after")
    def _consistent(self) -> Provenance:
        if self.sources[0].list != self.list or self.sources[0].row != self.row:
            raise ValueError("sources must start with the primary list and row")
        if self.list == "outside seed" and not self.basis:
            raise ValueError("an outside-seed item must say its basis")
        if self.list == "seed text" and not (self.quote and self.basis):
            raise ValueError("a seed-text item must quote the seed and say where (basis)")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_optionals(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for k in ("domain_in_seed", "repaired", "basis", "quote"):
            if data.get(k) is None:
                data.pop(k, None)
        return data


Limit = StrictInt | str


class Item(_Model):
    """One service item as shown on the terminal."""
    code: str = Field(pattern=r"^QHB-[A-Z]{2,3}-\d{3}$")
    domain: str = _NonEmpty
    main_name: str = _NonEmpty
    sub_name: str = _NonEmpty
    category: str = _NonEmpty
    handling_form: str = _NonEmpty
    service_object: str = _NonEmpty
    item_type: Literal["即办件", "承诺件"]
    legal_limit: Limit
    promised_limit: Limit
    fee: str = _NonEmpty
    flow: Literal["query_print", "apply", "pay", "certify"]
    materials: tuple[Material, ...] = Field(min_length=1)
    conditions: tuple[str, ...] = Field(min_length=1)
    requires_id: StrictBool
    #: the 爱山东 居民码 (citizen code) may identify the citizen instead of the ID card
    citizen_code_allowed: StrictBool = False
    fields: tuple[FormField, ...] = Field(min_length=1)
    provenance: Provenance
    implementation_code: str = _NonEmpty

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, v: str) -> str:
        if v not in KNOWN_DOMAINS:
            raise ValueError(f"unknown domain {v!r} (known: {'、'.join(KNOWN_DOMAINS)})")
        return v

    @field_validator("legal_limit", "promised_limit")
    @classmethod
    def _limit(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 0:
            raise ValueError("a time limit in working days cannot be negative")
        if isinstance(v, str) and not v.strip():
            raise ValueError("a time limit must be a number of working days or the source text")
        return v

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not all(c.strip() for c in v):
            raise ValueError("conditions must not be empty strings")
        return v

    @model_validator(mode="after")
    def _unique_field_names(self) -> Item:
        names = [f.name for f in self.fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"field names repeated: {dup}")
        return self

    @property
    def title(self) -> str:
        """The name shown on a button: the sub-item, which is the thing one applies for."""
        return self.sub_name

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Exactly the JSON fields of the catalog data (ITEM_FIELDS), JSON-ready."""
        return self.model_dump(mode="json")


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(item)"
        msg = e["msg"]
        if e["type"] == "missing":
            msg = "missing"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _parse_item(raw: Any, index: int, source: str) -> Item:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{source}: item #{index + 1} is not an object")
    label = f"item #{index + 1} ({raw.get('code', 'no code')})"
    try:
        return Item.model_validate(dict(raw))
    except ValidationError as e:
        raise CatalogError(f"{source}: {label}: {_describe(e)}") from None


class Catalog:
    """The validated items, by code and by domain, with pinyin search."""

    def __init__(self, items: Iterable[Item | Mapping[str, Any]], source: str = "catalog"):
        parsed: list[Item] = []
        for i, it in enumerate(items):
            parsed.append(it if isinstance(it, Item) else _parse_item(it, i, source))
        by_code: dict[str, Item] = {}
        by_name: dict[tuple[str, str, str], str] = {}
        for it in parsed:
            if it.code in by_code:
                raise CatalogError(f"{source}: duplicate code {it.code}")
            key = (it.domain, it.main_name, it.sub_name)
            if key in by_name:
                raise CatalogError(f"{source}: {it.code} duplicates {by_name[key]} "
                                   f"(same domain, main and sub name: {'/'.join(key)})")
            by_code[it.code] = it
            by_name[key] = it.code
        self.items: list[Item] = parsed
        self.source = source
        self._by_code = by_code
        # The pinyin index (pypinyin import + readings of every item) is built on first use, so a
        # kiosk can draw its home screen before it; `warm_search()` builds it in the background.
        self._index: SearchIndex[Item] | None = None
        self._index_lock = threading.Lock()

    def warm_search(self) -> None:
        """Build the search index now (idempotent, thread-safe)."""
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    self._index = SearchIndex(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Item:
        """The item with this code; KeyError (naming the code) if there is none."""
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"no catalog item with code {code!r}") from None

    def find(self, code: str) -> Item | None:
        """Like get() but None for an unknown code."""
        return self._by_code.get(code)

    def by_domain(self) -> dict[str, list[Item]]:
        """Items grouped by domain, domains in order of first appearance."""
        out: dict[str, list[Item]] = {}
        for it in self.items:
            out.setdefault(it.domain, []).append(it)
        return out

    def search(self, query: str, limit: int = 20) -> list[Item]:
        """Pinyin initials, full pinyin or Chinese; main name and domain rank first."""
        self.warm_search()
        index = self._index
        if index is None:  # cannot happen: warm_search built it
            raise RuntimeError("search index missing")
        return index.search(query, limit=limit)

    def enabled(self, disabled_codes: Iterable[str]) -> Catalog:
        """A catalog without the items a site switched off ([catalog] disabled)."""
        disabled = set(disabled_codes)
        unknown = sorted(disabled - set(self._by_code))
        if unknown:
            raise CatalogError(f"[catalog] disabled names unknown item codes: {', '.join(unknown)}")
        return Catalog([it for it in self.items if it.code not in disabled], source=self.source)

    def to_list(self) -> list[dict[str, Any]]:
        return [it.to_dict() for it in self.items]


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Load and validate the catalog (default: the bundled config/catalog/items.json).

    `path` may be the JSON file or a directory holding items.json.
    """
    p = Path(path) if path is not None else DEFAULT_PATH
    if p.is_dir():
        p = p / "items.json"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"{p}: cannot read catalog ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CatalogError(f"{p}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise CatalogError(f"{p}: expected an object with an 'items' list")
    if data.get("version") != SUPPORTED_VERSION:
        raise CatalogError(f"{p}: version {data.get('version')!r} not supported "
                           f"(expected {SUPPORTED_VERSION})")
    return Catalog(data["items"], source=str(p))
