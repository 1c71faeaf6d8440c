"""Realistic surrogates, consistent within a document/patient: the same original always maps to the
same surrogate, and every date of a document moves by the same offset (intervals stay true)."""
from __future__ import annotations

import datetime as dt
import hashlib
import random
import re

from medllm.data.deid import names as N

SURROGATE_FIRST = ["Avery", "Jordan", "Riley", "Casey", "Morgan", "Quinn", "Rowan", "Emerson", "Harper", "Reese"]
SURROGATE_LAST = ["Ashford", "Bellamy", "Carrow", "Delaney", "Everly", "Fairbanks", "Galloway", "Hartwell",
                  "Ingram", "Kingsley", "Lockwood", "Marlow", "Northcott", "Prescott", "Radley", "Sutherland"]
CITIES = ["Riverton", "Maplewood", "Fairview", "Lakeside", "Brookfield", "Cedar Falls", "Greenville", "Oakdale"]
STREETS = ["Elm Street", "Oak Avenue", "Pine Road", "Cedar Lane", "Maple Drive", "Birch Court"]
FACILITY_KINDS = ["Hospital", "Clinic", "Medical Center", "Health Centre", "Surgery", "Nursing Home", "School",
                  "Rehabilitation Center", "Practice", "Manor"]
DATE_FORMATS = ["%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%B %Y", "%B %d", "%m/%d"]


def _parse_date(text: str):
    for fmt in ("%d.%m.%Y", "%d/%m/%Y"):   # European day-first forms ("12.09.1933", "14/03/2024")
        try:
            if fmt == "%d.%m.%Y" or int(text.split("/")[0]) > 12:
                return dt.datetime.strptime(text.strip(), fmt), fmt
        except ValueError:
            pass
    clean = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", text.replace(" of ", " ")).replace(".", "").strip()
    clean = re.sub(r"\s+", " ", clean.replace(",", ", ")).replace(" ,", ",").replace(",,", ",")
    for fmt in DATE_FORMATS + ["%b %d %Y", "%B %d %Y", "%d %b %Y", "%b %Y", "%b %d", "%d %B", "%d %b", "%m-%d-%Y",
                               "%m.%d.%Y", "%m-%d-%y"]:
        try:
            return dt.datetime.strptime(clean, fmt), fmt
        except ValueError:
            continue
    return None, None


class SurrogateMaker:
    def __init__(self, doc_key: str, *, mode: str = "surrogate", date_shift: bool = True, secret: str = "medllm"):
        seed = int.from_bytes(hashlib.sha256(f"{secret}:{doc_key}".encode()).digest()[:8], "little")
        self.rng = random.Random(seed)
        self.mode, self.date_shift = mode, date_shift
        self.shift = dt.timedelta(days=self.rng.randint(-365, -30))
        self.memo: dict[tuple[str, str], str] = {}

    def __call__(self, entity: str, original: str) -> str:
        key = (entity, original.lower())
        if key not in self.memo:
            self.memo[key] = self._make(entity, original)
        return self.memo[key]

    def _make(self, entity: str, original: str) -> str:
        if entity == "AGE":
            return "90+"
        if entity == "DATE":
            return self._date(original)
        if self.mode == "mask":
            return f"[{entity}]"
        r = self.rng
        if entity == "NAME":
            parts = original.split()
            if len(parts) == 1:
                return r.choice(SURROGATE_LAST if parts[0] in N.LAST_NAMES or len(parts[0]) > 6 else SURROGATE_FIRST)
            return f"{r.choice(SURROGATE_FIRST)} {r.choice(SURROGATE_LAST)}"
        if entity == "LOCATION":
            return f"{r.randint(10, 999)} {r.choice(STREETS)}" if original[:1].isdigit() else r.choice(CITIES)
        if entity == "FACILITY":
            kind = next((w for w in FACILITY_KINDS if w.lower() in original.lower()), "Medical Center")
            return f"{r.choice(CITIES)} {kind}"
        if entity == "ZIP":
            return "00000"  # Safe Harbor: ZIP codes go (3-digit prefixes only for areas > 20,000 people)
        if entity == "EMAIL":
            return f"{r.choice(SURROGATE_FIRST).lower()}.{r.randint(10, 99)}@example.org"
        if entity == "URL":
            return f"https://example.org/{r.randint(1000, 9999)}"
        if entity == "IP":
            return f"192.0.2.{r.randint(1, 254)}"  # TEST-NET-1, never a real host
        if entity in ("PHONE", "FAX"):
            return f"({r.randint(200, 999)}) 555-01{r.randint(0, 99):02d}"  # 555-01xx: reserved fictional numbers
        # codes: keep the shape (letters stay letters, digits stay digits) so downstream parsers still work
        return "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ") if ch.isalpha() else
                       str(r.randint(0, 9)) if ch.isdigit() else ch for ch in original)

    def _date(self, original: str) -> str:
        parsed, fmt = _parse_date(original)
        if parsed is None:
            return "[DATE]"
        if not self.date_shift or self.mode == "mask":
            # keep only the year, which Safe Harbor allows; dates without a year lose everything
            return str(parsed.year) if "%Y" in fmt or "%y" in fmt else "[DATE]"
        if "%Y" not in fmt and "%y" not in fmt:
            parsed = parsed.replace(year=2000)  # leap-safe placeholder year for day/month-only dates
        return (parsed + self.shift).strftime(fmt)
