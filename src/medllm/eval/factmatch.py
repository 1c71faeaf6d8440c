"""Does a free-text answer state a known fact? The matcher behind the ``fact_qa`` task type.

A fact's value (e.g. "cough, angioedema and hyperkalaemia") is split into *parts*
(``value_parts``); a question is answered correctly when the answer states one *key part*
(``key_parts``: a part no more generic than the facts it must tell apart). Rules, in order:

1. Normalise both texts the same way (``normalise``): lower case, punctuation dropped,
   British spellings folded to US ones (haem->hem, oedema->edema, tumour->tumor, -ise->-ize,
   centre->center), plural ``s`` dropped, numbers kept (``1.0`` == ``1``), and synonyms mapped to
   one canonical form (``SYNONYMS``: ECG/electrocardiogram, breathlessness/shortness of breath,
   high potassium/hyperkalaemia, ...).
2. A part's *terms* are its content words (``STOP`` and ``MODIFIERS`` such as "urgent",
   "usually", "empirical" removed). A part is stated when every term occurs in the answer as a
   whole word (so "ace" never matches inside "space"); in any order, since a short answer may
   reorder a phrase. A term preceded in its clause by a negation ("not metformin", "avoid
   metformin", "instead of metformin") does not count, unless the part itself is negative
   ("usually no symptoms at all").
   A part of more than three terms may miss some (``needed``): long phrases get paraphrased.
3. Key parts: a part whose terms all occur in the values of ``GENERIC_AT`` or more *other*
   entries for the same attribute (e.g. "fever" among symptoms, "lifestyle change" among
   treatments) cannot tell the entry apart, so it does not count on its own; when every part of
   a value is generic, all of them are needed. A parenthesised short form ("(CPAP)") is one more
   alternative for its part. Numeric values (reference ranges) need every number of one part.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

GENERIC_AT = 2
# split a value into parts on list separators and linking words
_SPLIT = re.compile(r"\s*(?:[,;:]|\bplus\b|\band\b|\bor\b|\bwith\b|\bsuch as\b|\bby\b|\busing\b|"
                    r"\bthen\b|\bfollowed by\b|\bsuggesting\b|\bincluding\b|\bfor\b|\bif\b|\bwhen\b|\buntil\b|\bafter\b)\s*")
STOP = {"a", "an", "the", "of", "in", "on", "at", "to", "for", "as", "is", "are", "be", "by", "it", "its", "into",
        "from", "that", "this", "than", "which", "who", "can", "may", "any", "all", "at", "per", "each", "one",
        "their", "there", "when", "if", "up", "also", "out", "after", "before", "over", "under", "about", "s"}
MODIFIERS = {"usually", "often", "typically", "mainly", "mostly", "especially", "generally", "common", "commonly",
             "urgent", "urgently", "immediate", "immediately", "empirical", "simple", "standard", "usual",
             "first", "line", "initial", "early", "eligible", "patient", "person", "people", "adult", "level",
             "repeated", "serial", "basic", "few", "some", "certain", "very", "rarely", "test", "testing",
             "scan", "therapy", "treatment", "medicine", "drug", "tablet", "new", "clinical", "sign", "going", "through",
             "later", "episode", "only", "more", "less", "most", "sudden", "starting", "many", "year", "day", "week",
             "month", "long", "term", "use"}
NEGATORS = {"not", "no", "never", "avoid", "avoided", "without", "instead", "rather", "except", "nor", "non"}
_CLAUSE_END = {",", ".", ";", ":", "but", "and", "or", "while", "whereas"}

# canonical form <- variants (after spelling folding, before plural stripping; whole words only)
SYNONYMS = {
    "breathlessness": ["shortness of breath", "short of breath", "breathless", "dyspnea", "difficulty breathing"],
    "ecg": ["12 lead ecg", "12 lead electrocardiogram", "electrocardiogram", "ekg", "electrocardiograph"],
    "ct": ["computed tomography", "cat scan", "ct scan"],
    "mri": ["magnetic resonance imaging", "mri scan"],
    "x ray": ["xray", "radiograph", "radiography", "x rays"],
    "hba1c": ["glycated hemoglobin", "hemoglobin a1c", "a1c", "glycosylated hemoglobin"],
    "hypertension": ["high blood pressure", "raised blood pressure", "elevated blood pressure"],
    "hypotension": ["low blood pressure"],
    "hyperkalemia": ["high potassium", "raised potassium", "elevated potassium"],
    "hypokalemia": ["low potassium"],
    "hyponatremia": ["low sodium"],
    "hypoglycemia": ["low blood sugar", "low blood glucose", "low glucose"],
    "hyperglycemia": ["high blood sugar", "high blood glucose", "high glucose"],
    "thrombocytopenia": ["low platelets", "low platelet count"],
    "nsaid": ["non steroidal anti inflammatory drug", "nonsteroidal anti inflammatory drug",
              "non steroidal anti inflammatory", "anti inflammatory painkiller"],
    "ace inhibitor": ["angiotensin converting enzyme inhibitor", "acei"],
    "arb": ["angiotensin ii receptor blocker", "angiotensin receptor blocker", "angiotensin ii receptor antagonist"],
    "ssri": ["selective serotonin reuptake inhibitor"],
    "ppi": ["proton pump inhibitor"],
    "analgesic": ["painkiller", "pain killer", "pain relief", "analgesia", "pain reliever", "pain relieving"],
    "myocardial infarction": ["heart attack"],
    "fatigue": ["tiredness", "tired", "lethargy"],
    "corticosteroid": ["steroid"],
    "percent": ["%", "per cent"],
    "vomiting": ["being sick", "throwing up"],
    "asymptomatic": ["no symptoms", "no symptom", "symptomless", "silent"],
}


def fold_spelling(word: str) -> str:
    """British -> US spelling for the patterns that occur in medical text."""
    w = word.replace("ae", "e").replace("oe", "e")           # haem, anaemia, oedema, diarrhoea, apnoea
    w = re.sub(r"ph(?=ur|at|on)", "f", w) if w.startswith("sulph") else w
    if len(w) > 4:
        w = re.sub(r"our$", "or", w)                          # tumour, colour, behaviour
        w = re.sub(r"tre$", "ter", w)                         # centre, litre
        w = re.sub(r"ogue$", "og", w)                         # analogue
        w = re.sub(r"(?<=[a-z])is(e|ed|es|ing|ation|ations)$", r"iz\1", w)   # -ise, -isation
        w = re.sub(r"yse$", "yze", w)
    return w


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z0-9]+|[,.;:]|%")


def _number(tok: str) -> str:
    return tok.rstrip("0").rstrip(".") if "." in tok else tok


def _words(text: str) -> list[str]:
    low = text.lower().replace("-", " ").replace("/", " ").replace("’", "'")
    low = re.sub(r"'s\b", "", low)
    return [_number(t) if t[0].isdigit() else (_singular(fold_spelling(t)) if t[0].isalpha() else t)
            for t in _TOKEN.findall(low)]


_SYN_RE = [(re.compile(r"(?<![\w%])" + re.escape(" ".join(_words(v))) + r"(?![\w%])"), " ".join(_words(c)))
           for c, vs in SYNONYMS.items() for v in sorted(vs, key=len, reverse=True)]


_PHRASES = [" ".join(_words(c)) for c in SYNONYMS if " " in c]


def normalise(text: str) -> list[str]:
    """Tokens of ``text`` after rule 1 (clause punctuation kept as tokens for the negation scope)."""
    joined = " ".join(_words(text))
    for pattern, canon in _SYN_RE:
        joined = pattern.sub(canon, joined)
    return joined.split()


def terms(part: str) -> list[str]:
    """Content words of one part (rule 2)."""
    toks = [t for t in normalise(part) if t not in _CLAUSE_END and t not in STOP]
    return list(dict.fromkeys(t for t in toks if t not in MODIFIERS))


def value_parts(value: str) -> list[str]:
    """The parts of a fact's value; a parenthesised short form is kept as a part of its own."""
    parts = []
    for inner in re.findall(r"\(([^)]*)\)", value):   # a short form or synonym, not a remark
        parts += [inner] if len(inner.split()) <= 2 else []
    outer = re.sub(r"\([^)]*\)", " ", value)
    parts = [p.strip() for p in _SPLIT.split(outer) if p.strip()] + [p.strip() for p in parts]
    return [p for p in dict.fromkeys(parts) if terms(p)]


@dataclass(frozen=True)
class KeyParts:
    parts: tuple[str, ...]
    need_all: bool = False      # every part generic: all of them are needed

    def as_record(self) -> dict:
        return {"answers": list(self.parts), "need_all": self.need_all}


def key_parts(value: str, peers: list[str], numeric: bool = False) -> KeyParts:
    """Rule 3: the parts of ``value`` that can tell it apart from ``peers`` (the same attribute's
    values for the other entries). ``numeric``: the value is a reference range (its figures count)."""
    if numeric and re.search(r"\d", value):
        # a reference range: its figures are the fact; each bracketed alternative stands alone
        chunks = [re.sub(r"\([^)]*\)", " ", value)] + re.findall(r"\(([^)]*)\)", value)
        nums = [" ".join(re.findall(r"\d+(?:\.\d+)?", c)) for c in chunks]
        return KeyParts(tuple(n for n in nums if n))
    parts = value_parts(value)
    peer_terms = [set(t for t in normalise(p) if t not in _CLAUSE_END) for p in peers]
    distinctive = [p for p in parts if sum(set(terms(p)) <= pt for pt in peer_terms) < GENERIC_AT]
    if distinctive:
        return KeyParts(tuple(distinctive))
    return KeyParts(tuple(parts), need_all=True)


def needed(n: int) -> int:
    """Terms of an n-term part that must be stated: all of up to 3; beyond that one in two of
    the terms after the first two may be missing (long phrases get paraphrased)."""
    return n if n <= 3 else n - (n - 2) // 2


def _stated(answer: list[str], part_terms: list[str], negative_part: bool) -> bool:
    missing = 0
    for term in part_terms:
        words = term.split()
        n = len(words)
        found = False
        for i in range(len(answer) - n + 1):
            if answer[i:i + n] != words:
                continue
            if negative_part or not _negated(answer, i):
                found = True
                break
        missing += not found
    return len(part_terms) - missing >= needed(len(part_terms))


def _negated(tokens: list[str], i: int, window: int = 3) -> bool:
    for j in range(i - 1, max(-1, i - 1 - window), -1):
        if tokens[j] in _CLAUSE_END:
            return False
        if tokens[j] in NEGATORS:
            return True
    return False


def part_terms(part: str) -> list[str]:
    """Terms of a part as matched: numbers for numeric parts, canonical multi-word synonyms whole."""
    if re.fullmatch(r"[\d. ]+", part.strip()):
        return [_number(t) for t in part.split()]
    return terms(part)


def _canon_terms(part: str) -> list[str]:
    # multi-word canonical synonyms ("x ray", "ace inhibitor") must match as a phrase
    norm = " ".join(t for t in normalise(part) if t not in _CLAUSE_END)
    phrases = [c for c in _PHRASES if re.search(rf"(?<!\w){re.escape(c)}(?!\w)", norm)]
    single = [t for t in part_terms(part) if not any(t in p.split() for p in phrases)]
    return phrases + single


def matches(answer: str, key: KeyParts | dict) -> bool:
    """True when ``answer`` states the fact (one key part, or all parts when ``need_all``)."""
    if isinstance(key, dict):
        key = KeyParts(tuple(key["answers"]), bool(key.get("need_all")))
    toks = normalise(answer)
    hits = []
    for part in key.parts:
        negative = any(w in NEGATORS for w in normalise(part))
        hits.append(_stated(toks, _canon_terms(part), negative))
    return all(hits) if key.need_all else any(hits)
