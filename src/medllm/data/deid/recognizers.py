"""Recognizers for the HIPAA Safe Harbor identifiers, on presidio-analyzer.

presidio's own pattern recognizers (email, URL, IP, SSN) are reused; clinical ones are ours:
labelled identifiers (MRN, health plan, account, licence, vehicle, device, other codes) return only the
value after the label, phones become FAX when a fax label precedes them, and names come from
titles, labels, signature lines, a gazetteer and document-wide propagation of names already found.
Nothing here touches the network: tldextract uses its bundled suffix snapshot.
"""
from __future__ import annotations

import re
from functools import lru_cache

import regex

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

from medllm.data.deid import names as N

ENTITIES = ("NAME", "LOCATION", "ZIP", "DATE", "AGE", "PHONE", "FAX", "EMAIL", "SSN", "MRN", "HEALTH_PLAN",
            "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "URL", "IP", "ID")

MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
ORDINAL_WORDS = (r"(?:(?:twenty|thirty)[\s-](?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|first|second|"
                 r"third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|"
                 r"sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth)")
DATE_PATTERNS = [
    # one separator throughout: "12.5/50" (a dose ratio) is not a date, "12/5/50" is
    Pattern("mdy_numeric", r"\b(?:0?[1-9]|1[0-2])([/\-.])(?:0?[1-9]|[12]\d|3[01])\1(?:19|20)?\d{2}\b", 0.85),
    Pattern("iso", r"\b(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b", 0.9),
    Pattern("month_day_year", rf"\b{MONTHS}\s+(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b", 0.9),
    Pattern("day_month_year", rf"\b(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS},?\s+(?:19|20)\d{{2}}\b", 0.9),
    Pattern("month_year", rf"\b{MONTHS}\s+(?:of\s+)?(?:19|20)\d{{2}}\b", 0.7),
    Pattern("month_short_year", rf"\b{MONTHS}\s+['’]\d{{2}}\b", 0.7),   # "February '25"
    Pattern("month_day", rf"\b{MONTHS}\s+(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\b", 0.6),
    Pattern("day_month", rf"\b(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS}(?!\w)", 0.6),
    Pattern("dmy_dotted", r"\b(?:0?[1-9]|[12]\d|3[01])\.(?:0?[1-9]|1[0-2])\.(?:19|20)\d{2}\b", 0.85),
    Pattern("dmy_numeric", r"\b(?:1[3-9]|2\d|3[01])([/\-])(?:0?[1-9]|1[0-2])\1(?:19|20)?\d{2}\b", 0.85),
    # lab and EHR exports: "03-Feb-2025", "3-FEB-25"
    Pattern("d_mon_y", rf"\b(?:[12]\d|3[01]|0?[1-9])-(?i:{MONTHS})-(?:19|20)?\d{{2}}\b", 0.85),
    # "on 19/05": day-first without a year, only when the day cannot be a month
    # no letter before a bare day/month pair: "L4/5", "C5/6", "T12/L1" are spinal levels, "G2/3" a grade
    Pattern("dm_numeric", r"(?<![\w/])(?:1[3-9]|2\d|3[01])/(?:0?[1-9]|1[0-2])(?![\d/])", 0.5),
    Pattern("the_ordinal", r"(?<=\b(?:the|on|by|until|from)\s)(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)\b", 0.6),
    Pattern("in_month", rf"(?<=\b(?:in|since|until|from|last|early|late|mid|of)\s){MONTHS}(?!\w)", 0.5),
    # two-digit years and year-first forms from European, Asian and South African systems: "28.07.25", "2025/08/12"
    Pattern("dmy_dotted_yy", r"\b(?:0[1-9]|[12]\d|3[01])\.(?:0[1-9]|1[0-2])\.\d{2}(?![\d.])", 0.8),
    Pattern("ymd_slash", r"\b(?:19|20)\d{2}([/.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])\b", 0.85),
    # written ordinals: "the second of September", "September the second", "on the 26th"
    Pattern("ordinal_words_of_month", rf"\b(?:the\s+)?{ORDINAL_WORDS}\s+of\s+{MONTHS}(?!\w)(?:,?\s+(?:19|20)\d{{2}})?", 0.8),
    Pattern("month_the_ordinal_words", rf"\b{MONTHS}\s+(?:the\s+)?{ORDINAL_WORDS}\b", 0.7),
    Pattern("the_ordinal_with_article", r"(?<=\b(?:on|by|until|from|before|after|since|till)\s)the\s+(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)\b", 0.6),
    Pattern("md_numeric", r"(?<![\w/])(?<!(?i:pain) )(?<!(?i:pain): )(?<!(?i:score) )(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?![\d/])", 0.5),
]
PHONE_RE = re.compile(r"(?<![\w-])(?:(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}|"
                      r"(?:\+44\s?|0)(?:\d{4}\s?\d{6}|\d{3}\s\d{4}\s\d{4}|\d{2}\s\d{4}\s\d{4}|\d{3}\s\d{3}\s\d{4})|"   # UK: 07700 900461, 020 7946 0321, 0161 496 0732
                      r"\+(?:[2-9]\d{0,2})[\s.-]?(?:\(\d{1,4}\)|\d{1,4})(?:[\s.-]\d{2,5}){2,5}|"   # +27 82 555 0148, +49 30 1234 5678
                      r"\(0\d{1,4}\)\s?\d{3,4}[\s.-]?\d{3,4}|"
                      r"0\d{2,4}[ \-]\d{3,4}[ ]\d{3,4}|0\d(?:[ .]\d{2}){4}|0\d{1,4}[ /-]\d{5,8})"   # (03) 5221 8840, 044-2616 3382, 06-41882753
                      r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)")
# a number of 8-15 digits after a phone label is a phone whatever its national format
# "HP"/"H/P" (handphone) in Singapore and Malaysia, WhatsApp numbers
PHONE_LABELLED = re.compile(r"(?:\b(?:HP|H/P)|\b(?i:tel|ph|phone|mob|mobile|cell|telephone|handphone|whatsapp|call(?:\s+back)?|reached\s+on|fax|f))\b"
                            r"(?i:\.?\s*(?:no\.?|number|#)?[ \t]*[:\-]?[ \t]*)((?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d[\d .-]{6,16}\d)")
# internal numbers reach one person: "pager 3312", "bleep 4127", "ext. 2210", "Vocera 5521"
PAGER = re.compile(r"\b(?i:pager|bleep|beeper|ext|extension|vocera|page\s+(?:no\.?|#))\.?\s*(?:no\.?|number|#)?\s*[:#]?\s*(\d{3,6})(?!\d|\.\d|\s*(?:°|deg|degrees?|mm|cm|%))")
FAX_CUE = re.compile(r"\bfax(?:ed)?\b|\bfacsimile\b|\bf:\s*$", re.I)
# a code: letters/digits/dashes, or a state/issuer prefix then the number ("MA S19938402", "CA D4471182"),
# or digit groups ("943 476 5919"); leading zeros are part of the value
# a letter group then digit groups: "DL 5582 0193", "ITX 4410 2291 07" (the letters are upper case even under re.I)
PREFIX_GROUPS = r"(?-i:[A-Z]{1,4})[ \-]?\d{2,6}(?:[ \-]\d{1,6}){1,4}(?!\d|\.\d|\s*(?:mg|mcg|g|ml|mL|units?|%)(?!\w))"
# a partly masked number is still an identifier: "XXXX XXXX 4821", "***-**-1234"
MASKED = r"(?:[Xx*•]{2,6}[ \-]){1,4}\d{3,6}(?!\d)"
ID_VALUE = r"(" + MASKED + r"|" + PREFIX_GROUPS + r"|(?:(?-i:[A-Z]{2,4})\s)?[A-Z0-9][A-Z0-9\-/]{3,24}[A-Z0-9]|\d{2,6}(?:\s\d{1,6}){1,3}(?!\d|\.\d|\s*(?:mg|mcg|g|ml|mL|units?|%)(?!\w))|\d{4,})"
# bare labels ("health plan MBX-7751-2204", "insurance XGH4188"): the value must look like a code
CODE_VALUE = (r"(" + PREFIX_GROUPS + r"|\d{3,6}(?:\s\d{3,6})+\s\d{1,2}(?!\d|\.\d)|(?=[A-Z]{0,3}\d)[A-Z]{0,3}\d{2,6}(?:\s\d{3,6}){1,3}(?!\d|\.\d|\s*(?:mg|mcg|g|ml|mL|units?|%)(?!\w))|"
              r"(?=[A-Z0-9\-]*\d)(?=[A-Z0-9\-]*[A-Z])[A-Z0-9][A-Z0-9\-]{4,24}[A-Z0-9]|\d{6,})")
LABELLED_IDS = [
    # record numbers of other systems: AU "UR"/"URN", Indian "UHID", South African "Folder no."
    ("MRN", r"\b(?:(?-i:UR|URN|UHID|CR|HN|IPP)(?=\s*[:#]?\s*[A-Z]{0,4}[\-/]?[\d/]*\d{4,})|folder\s+(?:no\.?|number|#)|hospital\s+id)"),
    ("MRN", r"\b(?:MRN|MR\s?#|URN?\s*(?:no\.?|number|#)|unit\s+record(?:\s+(?:number|no\.?|#))?|hosp(?:ital)?\.?\s+(?:no|number|#)\.?|medical\s+record(?:\s+(?:number|no\.?|#))?|record\s+(?:number|no\.?|#)|chart\s+(?:number|no\.?|#))"),
    # national schemes and medical aids: Nigerian NHIA/NHIS, Australian DVA cards, South African "medical aid no."
    ("HEALTH_PLAN", r"\b(?:(?-i:NHIA|NHIS|DVA|ECHS|CGHS|GMS|DPS|EHIC|PMJAY)(?:\s+(?:gold|white|orange|card|medical\s+card|no\.?|number|#))*|medical\s+aid(?:\s+(?:member(?:ship)?|no\.?|number|#))*|"
                    r"(?:medicare|medical|insurance|european\s+health\s+insurance)\s+card(?:\s+(?:no\.?|number))?|"
                    # "travel ins: SXT-22918476-NZ", "ins. no. X": insurance abbreviated, only before a colon or no.
                    r"(?:travel\s+)?ins(?:urance)?\.?(?=\s*(?::|no\b|number|#)))"),
    ("HEALTH_PLAN", r"\b(?:health\s+plan|insurance|insurer|member|subscriber|policy|beneficiary|medicaid|medicare|group)"
                    r"(?:\s+(?:id|number|no\.?|#|beneficiary\s+number))+"),
    ("ACCOUNT", r"\b(?:account|acct\.?|billing|financial|encounter|visit|claim)(?:\s*(?:id|number|no\.?|#))*"),
    # US financial numbers ("FIN 0004718829305") in capitals before digits
    ("ACCOUNT", r"\b(?-i:FIN)(?=\s*[:#]?\s*\d{6,})"),
    # admission/case numbers: "IP No.", "OP No.", German "Fall-Nr.", "Aufnahme-Nr."
    ("ACCOUNT", r"\b(?:(?-i:IP|OP|IPD|OPD)\s+(?:no\.?|number|#)|(?:fall|aufnahme|episode)[\s\-]?(?:nr|no|number)\b\.?)"),
    ("LICENSE", r"\b(?:(?:driver'?s?\s+|driving\s+)?(?:licen[cs]e|lic\.?)|DL|CDL|DEA|NPI|certificate|registration|board\s+cert(?:ification)?)"
                r"(?:\s+(?:id|number|no\.?|#))*"),
    # professional registers: GMC/NMC (UK), IMC (Ireland), CPSO (Ontario), AHPRA (Australia), HPCSA (South Africa),
    # MCNZ, MCI (India), BIG (Netherlands), RPPS (France)
    ("LICENSE", r"\b(?-i:GMC|NMC|HCPC|GPhC|IMC|NMBI|CPSO|CPSBC|CPSA|CMQ|AHPRA|HPCSA|SANC|MCNZ|NCNZ|MCI|SMC|BIG|RPPS|ADELI|"
                r"MCR|SNB|PSI|PCI|DCI|NMCN|MDCN|KMPDC|MMC|TNMC|KMC|DMC|PMDC|PNC|COREN|CRM|ÖÄK|LANR)"
                r"(?:\s+(?:reg(?:istration)?\.?|no\.?|number|#))*"),
    # any register's acronym before "Reg. No." / "registration number": "TNMC Reg. No. 98214", "PSI reg. no. 8812"
    ("LICENSE", r"\b(?-i:[A-Z]{2,6})\s+reg(?:istration|n)?\.?\s*(?:no\.?|number|#)"),
    ("VEHICLE", r"\b(?:VIN|vehicle\s+(?:id|identification\s+number)|licen[cs]e\s+plate|plate(?:\s+(?:number|no\.?|#))?)"),
    ("DEVICE", r"\b(?:(?-i:SN)\b|serial(?:\s+(?:number|no\.?|#))?(?:\s+(?:on|from|of)\s+(?:the\s+)?(?:back|base|side|box|label|device|pump|meter|unit))?|S/N|device\s+(?:id|identifier|number)|UDI|implant\s+(?:id|serial)|"
               r"lot(?:\s+(?:number|no\.?|#))?|model\s+(?:number|no\.?|#))"),
    ("ID", r"\b(?:case|accession|specimen|sample|study|trial|requisition|order|patient|employee|badge|passport)"
           r"(?:\s+(?:id|number|no\.?|#))+"),
    # national health and insurance numbers: NZ NHI "ZAB1234", UK NHS "943 476 5919", Scottish CHI, Ontario OHIP,
    # Quebec RAMQ, AU IHI, Irish PPSN, Austrian SVNR, "health card"; the ambiguous short ones (CHI, PHN, BSN, PPS)
    # only before no./number/#/colon ("PHN" is also post-herpetic neuralgia)
    ("ID", r"\b(?:NHI|NHS|OHIP|RAMQ|IHI|PPSN|SVNR|health\s+(?:card|index|number|insurance\s+(?:card|number))|"
           r"(?:personal|provincial)\s+health\s+number|(?:CHI|PHN|BSN|PPS|AHV|NIR|H&C)(?=\s*(?:no\b|number|#|:))|"
           # identity numbers of more systems: Singapore NRIC/FIN, Malaysian MyKad/IC, Indian ABHA, birth certificates,
           # Hong Kong HKID, Spanish DNI/NIE, Italian codice fiscale, Brazilian CPF, Mexican CURP, Chilean RUT,
           # Polish PESEL, Turkish TC, Pakistani CNIC, Indonesian NIK/KTP, Emirates ID, Saudi Iqama
           r"(?-i:NRIC|MyKad|HKID|DNI|NIE|CPF|CURP|RUT|PESEL|CNIC|NIK|KTP|ABHA|TFN|SIN|AMKA|EGN|CNP|OIB|JMBG)(?:/(?-i:[A-Z]{2,4}))?|"
           r"codice\s+fiscale|emirates\s+id|iqama|birth\s+cert(?:ificate)?|(?-i:IC|BC)(?=\s*(?:no\b|number|#|:)))"
           r"(?:\s+(?:id|number|no\.?|#|card))*"),
    ("ID", r"\b(?:acc(?:ession|n)?\.?\s*(?:no\.?|number|#)|study|rx\s*#|ref(?:erence)?|nhs\s+number(?:\s+is)?|order\s*#|court\s+order)"),
    # lab and report numbers: "Lab No.", "lab ref.", German "Befund-Nr.", "Auftrags-Nr."
    ("ID", r"\b(?:lab(?:oratory)?\s+(?:no\.?|number|ref\.?|#|id)|(?:befund|auftrags|proben|labor|einsende)[\s\-]?nr\b\.?|"
           r"report\s+(?:no\.?|number|#))"),
    # national identity numbers: Scottish CHI (10 digits), South African ID (13 digits), "national ID", Aadhaar
    ("ID", r"\b(?:(?-i:CHI)(?=\s*[:#]?\s*\d{10}\b)|(?-i:(?:SA\s+)?ID)(?=\s*[:#]?\s*\d{5,}\b)|national\s+id(?:entity)?(?:\s+(?:no\.?|number|card))?|"
           r"aadhaar(?:\s+(?:no\.?|number))?|identity\s+(?:no\.?|number|card))"),
    # staff and call-centre numbers: "call handler #4471", "operator ID 20931", "badge no. 5512"
    ("ID", r"\b(?:call\s+handler|handler|operator|dispatcher|call\s+taker|agent|staff|crew|interpreter|translator)\s*(?:id|number|no\.?|#)"),
    # "ID no. 6605125834083"; applications, authorisations, referrals, jobs and sessions by number
    ("ID", r"\b(?:(?-i:ID)\s*(?:no\.?|number|#)|(?:application|authori[sz]ation|prior\s+auth|referral|confirmation|"
           r"booking|ticket|job|dictation|transcription|session|meeting|conference)\s*(?:id|number|no\.?|#|ref\.?))"),
]
# "Patient ID on portal: X", "member number for Medicaid: X": a short phrase between a label and its colon
LABEL_QUALIFIER = r"(?:\s+(?:on|in|for|at|from|with)\s+(?:the\s+)?[A-Za-z]+(?:\s+[A-Za-z]+)?(?=\s*[:#=]))?"


BARE_LABELS = [
    ("HEALTH_PLAN", r"\b(?:health\s+plan|insurance|insurer|member|subscriber|policy|medicaid|medicare|MBI|plan)"),
    ("ACCOUNT", r"\b(?:account|acct\.?)"),
    ("ID", r"\b(?:acc|accn|accession)\.?"),   # "acc XR-25-0041187", "Acc: PET2500917": the value must be a code
    ("ID", r"\b(?:passport|session|job)"),   # "NZ passport LM481726", "session VV-5520913", "Job #JX88123"
]


class OfflineEmailRecognizer(PatternRecognizer):
    """presidio's email patterns; any dotted domain counts. Public suffixes are not required: hospital
    intranets use ``.local``/``.lan``/``.corp`` and test data ``.example``, and a ``user@host.tld``
    string in a note is an address whatever its suffix."""

    def __init__(self):
        from presidio_analyzer.predefined_recognizers import EmailRecognizer

        super().__init__(supported_entity="EMAIL", patterns=EmailRecognizer.PATTERNS, name="email")

    def validate_result(self, pattern_text: str):
        labels = pattern_text.split("@")[-1].split(".")
        return len(labels) >= 2 and labels[-1].isalpha() and 2 <= len(labels[-1]) <= 24


class PlausibleUrlRecognizer(PatternRecognizer):
    """presidio's URL patterns, minus run-together sentences ("the diagnosis.Patient: ...") that
    look like domains: a bare host needs a lowercase known suffix."""

    def __init__(self):
        from presidio_analyzer.predefined_recognizers import UrlRecognizer

        base = UrlRecognizer()
        super().__init__(supported_entity="URL", patterns=base.patterns, name="url")

    def validate_result(self, pattern_text: str):
        if "://" in pattern_text or pattern_text.lower().startswith("www."):
            return True
        host = pattern_text.split("/")[0]
        labels = host.split(".")
        if any(label[:1].isupper() for label in labels[1:]):
            return False
        return _tld_extract()(host).suffix != ""


@lru_cache(maxsize=1)
def _tld_extract():
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


class RegexRecognizer(EntityRecognizer):
    """Base: subclasses yield (start, end, entity, score) from plain ``re`` so spans can be a group."""

    def __init__(self, entities, name):
        super().__init__(supported_entities=list(entities), name=name, supported_language="en")

    def load(self) -> None:
        pass

    def spans(self, text: str):
        raise NotImplementedError

    def analyze(self, text, entities, nlp_artifacts=None):
        return [RecognizerResult(e, s, t, sc) for s, t, e, sc in self.spans(text) if not entities or e in entities]


class LabelledIdRecognizer(RegexRecognizer):
    """``<label>[:#]? <value>``: the value is the identifier, the label stays."""

    def __init__(self):
        super().__init__([e for e, _ in LABELLED_IDS], "labelled_ids")
        self.patterns = [(e, re.compile(label + LABEL_QUALIFIER + r"\.?\s*(?:[:#=]|is|was)?\s*#?\s*" + ID_VALUE, re.I))
                         for e, label in LABELLED_IDS]
        # plates are groups of letters and digits ("KZ 771 ABC 02", "AB12 CDE", "7-ABC-123"), upper case
        self.patterns.append(("VEHICLE", re.compile(r"\b(?i:licen[cs]e\s+plate|number\s+plate|registration\s+plate|plate|"
                                                    r"rego|reg(?:istration)?\.?\s*(?:no\.?|number)?)\s*(?:[:#=]|is|was)?\s*"
                                                    r"((?=[A-Z0-9 \-]*\d)(?=[A-Z0-9 \-]*[A-Z])[A-Z0-9]{1,4}(?:[ \-][A-Z0-9]{1,4}){1,4})\b")))
        self.patterns += [(e, re.compile(label + r"\s*[:#=]?\s*" + CODE_VALUE, re.I)) for e, label in BARE_LABELS]

    def spans(self, text):
        for entity, rx in self.patterns:
            for m in rx.finditer(text):
                value = m.group(1)
                if value.isalpha() and not value.isupper():
                    continue  # an ordinary word after the label, not a code
                if not any(ch.isdigit() for ch in value):
                    continue
                digits = sum(ch.isdigit() for ch in value)
                if " " in value and digits < 8 and not re.match(r"[A-Z]{2}\s", value) and entity != "VEHICLE" \
                        and not re.fullmatch(MASKED, value) \
                        and not (digits >= 6 and re.match(r"[A-Z]{1,4} ?\d", value)):
                    value = value.split()[0]   # "MRN 4401 on ward 5": digit groups are one code only when long
                    if len(value) < 4 or not any(ch.isdigit() for ch in value):
                        continue   # "Reference: NICE NG138": a guideline's publisher, not a code
                yield m.start(1), m.start(1) + len(value), entity, 0.9


class PhoneFaxRecognizer(RegexRecognizer):
    def __init__(self):
        super().__init__(["PHONE", "FAX"], "phone_fax")

    def spans(self, text):
        for m in PAGER.finditer(text):
            yield m.start(1), m.end(1), "PHONE", 0.8
        for rx, g in ((PHONE_RE, 0), (PHONE_LABELLED, 1)):
            for m in rx.finditer(text):
                value = m.group(g).rstrip(" .-")
                digits = sum(ch.isdigit() for ch in value)
                if g and not 8 <= digits <= 15:
                    continue
                if not g and value.startswith("0") and not 9 <= digits <= 12:
                    continue   # a trunk-0 national number has 9-12 digits (UK, AU, FR; German mobiles have 11-12)
                before = text[max(0, m.start(g) - 25):m.start(g)]
                entity = "FAX" if FAX_CUE.search(before.split("\n")[-1]) else "PHONE"
                yield m.start(g), m.start(g) + len(value), entity, 0.85


class AgeOver89Recognizer(RegexRecognizer):
    RX = re.compile(r"(?<![/.])\b(9\d|1[0-2]\d)(?=[\s-]*(?:years?|yrs?|y/?o|y\.o\.?|year-old|yo\b|y\b(?!/))|\s*/?\s*(?:M|F)\b)", re.I)
    WORDS = (r"(?:ninety(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine))?|"
             r"(?:a|one)[\s-]hundred(?:(?:\s+and)?[\s-](?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve))?)")
    # written out: before "year(s)"/"-year-old", after "aged"/"age", or in a name's apposition ("Mrs O'Dowd, ninety-one,")
    RX_WORDS = re.compile(rf"(?i:\b({WORDS})(?=[\s-]*(?:years?|yrs?|year-old)\b))|(?i:(?<=\baged\s)|(?<=\bage\s))({WORDS})\b|"
                          rf"(?<=[\w)], )((?i:{WORDS}))(?=[,.;)])")
    RX2 = re.compile(r"\b(?:age|aged|turned|turns|turning|is now|I'm|I am)\s*:?\s*(9\d|1[0-2]\d)\b", re.I)
    # "Esperanza Villalobos, 97." / "(93)": an age in a name's apposition
    RX3 = re.compile(r"(?<=[a-z], )(9\d|1[0-2]\d)(?=[.,;)]|\s*$)|(?<=\()(9\d|1[0-2]\d)(?=\))", re.M)

    def __init__(self):
        super().__init__(["AGE"], "age_over_89")

    def spans(self, text):
        for rx in (self.RX, self.RX2, self.RX3, self.RX_WORDS):
            for m in rx.finditer(text):
                g = next(i for i in range(1, rx.groups + 1) if m.group(i))
                yield m.start(g), m.end(g), "AGE", 0.85


class LocationRecognizer(RegexRecognizer):
    # an optional unit before ("Apt 12C, 3400 Ocean Drive", "Flat 2, 14 Mill Lane", "3/220 Kensington Parade")
    # or after ("12 Elm St, Suite 400"); no time ("07:42 Hi Dr") and no "Dr <Name>"
    UNIT = r"(?:Apt|Apartment|Unit|Suite|Ste|Flat|Room|Rm|Lot|#)\.?\s*#?\s*[A-Z0-9]{1,5}\b"
    # a building before ("Carrow House, 12 Tanner Street"), "No. 12, 4th Main Road" (India), a direction ("2318 W Commerce St")
    STREET = re.compile(rf"(?:\b[A-Z][a-z]+\s+(?:House|Court|Building|Buildings|Tower|Towers|Mansions|Chambers|Villa|Cottage|Farm|Hall|Block)"
                        rf",\s+)?(?:\b{UNIT},?\s+)?(?:\bNo\.?\s*\d{{1,5}}[A-Z]?,\s+|(?<![:\d])(?:\b\d{{1,4}}[A-Z]?/)?\b\d{{1,6}}[A-Z]?\s+)"
                        rf"(?:(?:N|S|E|W|NE|NW|SE|SW)\.?\s+)?(?:\d{{1,3}}(?:st|nd|rd|th)\s+)?(?:[A-Z][a-z]+\.?\s+){{1,3}}"
                        r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr(?!\.?\s+[A-Z])|Court|Ct|Way|"
                        r"Place|Pl|Terrace|Tce|Circle|Highway|Hwy|Parkway|Pkwy|Close|Crescent|Cres|Row|Gardens|Mews|"
                        r"Square|Sq|Parade|Pde|Esplanade|Grove|Walk|Rise|Quay|Wharf|Promenade|Alley|Plaza|Trail|Loop|"
                        r"Pike|Turnpike|Broadway)\b\.?"
                        rf"(?:,?\s+{UNIT})?")
    # continental forms: "Hauptstraße 12", "Keizersgracht 401", "Calle Mayor 5, 3º", "Rua Augusta 100", "ul. Długa 7"
    STREET_EU = regex.compile(r"\b(?:\p{Lu}\p{Ll}+(?:straße|strasse|str\.|weg|gasse|platz|allee|laan|straat|gracht|gade|vej|"
                              r"gatan|vägen|veien|katu|tie|utca)|(?:Calle|Avenida|Av\.|Rua|Via|Viale|Piazza|Rue|Chemin|Paseo|"
                              r"Carrer|Ulica|ul\.|Praça|Plaza)\s+(?:(?:de|del|da|do|dos|des|du|la|le|di|della)\s+)*"
                              r"\p{Lu}[\p{L}\-]+(?:\s+\p{Lu}[\p{L}\-]+)?|"
                              # "Urdenbacher Allee 83", "Kölner Straße 5", "Nieuwe Gracht 12"
                              r"\p{Lu}\p{Ll}+[ \t](?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee|Laan|Straat|"
                              r"Gracht|Kade|Plein|Dijk|Markt))"
                              r",?\s+\d{1,4}[a-zA-Z]?\b|"
                              # French, Belgian, Swiss: the number first, "5 rue Saint-Georges", "12 bis avenue de la Gare"
                              r"\b\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?i:rue|avenue|av\.|boulevard|bd|place|allée|chemin|quai|"
                              r"impasse|route|cours|passage|square)[ \t]+(?:(?:de|du|des|la|le|l’|l'|d’|d')[ \t]*)*\p{Lu}[\p{L}\-]+"
                              r"(?:[ \t]\p{Lu}[\p{L}\-]+)?")
    STREET_NAMED = re.compile(r"\b(?:[A-Z][a-z]+[ \t]+){1,2}(?:Street|Avenue|Ave|Road|Boulevard|Blvd|Lane|Close|Crescent|"
                              r"Drive|Terrace|Parkway|High\s+Road|High\s+Street)\b\.?")
    # city, state or province code, postcode: US "Miami Beach, FL 33139", AU "Geelong VIC 3220",
    # CA "Halifax, NS B3H 2Y9"; the code must be a real state/province code
    REGIONS = frozenset("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM "
                        "NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI NSW VIC QLD SA WA TAS NT ACT "
                        "ON QC NS NB MB BC PE SK AB NL YT NU".split())
    CITY_STATE_ZIP = re.compile(r"\b((?:[A-Z][a-z]+\s){0,2}[A-Z][a-z]+),?\s+([A-Z]{2,3}),?\s+"
                                r"(\d{5}(?:-\d{4})?|\d{4}|[A-Z]\d[A-Z]\s?\d[A-Z]\d)\b")
    ZIP = re.compile(r"\b(?:ZIP|zip\s*code|postal\s*code|post\s*code|postcode|PLZ|CAP|CEP)\s*:?\s*"
                     r"(\d{5}(?:-\d{4})?|\d{4}(?:\s?[A-Z]{2})?|\d{3}-\d{4}|\d{5}-\d{3}|"
                     r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d)\b", re.I)
    # UK postcodes have a shape no clinical string has ("SW1A 1AA", "M13 9PL", "EH16 4SA")
    UK_POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{2})\b")
    # a postcode before the city, after a street: "Keizersgracht 401, 1016 EK Amsterdam", "Hauptstraße 12, 10115 Berlin"
    POST_CITY = regex.compile(r",?[ \t]{1,3}(\d{4}\s?[A-Z]{2}|\d{5}|\d{4}|\d{2}-\d{3})[ \t]+(\p{Lu}[\p{L}\-]+(?:[ \t]\p{Lu}[\p{L}\-]+)?)")
    # a town right after an address or a named facility: "220 Kensington Parade, Geelong", "X Associates, Milwaukee, on"
    TOWN_AFTER = regex.compile(r",[ \t]+(\p{Lu}\p{Ll}+(?:[ \t]\p{Lu}\p{Ll}+)?)(?=[ \t]*(?:[,.;\n)]|$|[ \t]+(?:on|at|in|for)\b))")
    # what continues an address after its street: "off Ogba Road", a unit, a suburb or town in one or two words (also
    # "KwaMashu"), a state code, and a postcode ("…, Ikeja, Lagos", "…, Apt 6, San Antonio, TX", "…, Lyon 69005")
    ADDRESS_PART = regex.compile(r"(?:,[ \t]*|[ \t]+(?=off\b))((?:off[ \t]+(?:\p{Lu}\p{Ll}+[ \t]){1,3}(?:Road|Rd|Street|St|Avenue|Ave|Lane|Close|Way|Crescent)\.?)|"
                                 r"(?:Apt|Apartment|Unit|Suite|Flat|Room)\.?[ \t]*#?[ \t]*[A-Z0-9]{1,5}|"
                                 r"\p{Lu}\p{L}*\p{Ll}(?:[ \t\-]\p{Lu}\p{L}*\p{Ll})?)(?![\p{L}])")
    ADDRESS_STATE = regex.compile(r",?[ \t]+([A-Z]{2,3})(?![\p{L}])")
    ADDRESS_POSTCODE = regex.compile(r"[ \t]*[,\-–]?[ \t]*(\d{4,6}(?:-\d{4})?|\d{2}-\d{3})(?![\d/:]|\.\d)")
    AMBIGUOUS_REGIONS = frozenset("ID IN OR ME OK HI DE MD PA LA CO AL MS MO".split())
    # a town right before a postcode whose shape is unmistakable: UK "York YO1 6JB", Canadian "Ottawa K1A 0B1"; a place
    # before a postcode is a place even when the word is also an eponym ("Glasgow G2 4JR")
    POSTCODE_SHAPES = (r"[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[ABD-HJLNP-UW-Z]{2}|[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ \t]\d"
                       r"[ABCEGHJ-NPRSTV-Z]\d")
    TOWN_POSTCODE = regex.compile(rf"(?<![\p{{L}}\-])(\p{{Lu}}\p{{Ll}}+(?:[ \t\-]\p{{Lu}}\p{{Ll}}+){{0,2}}),?[ \t]+"
                                  rf"({POSTCODE_SHAPES})(?![\w])")
    # a continental postcode then a town at the start of an address line or after a comma: "1012 AB Amsterdam",
    # "10115 Berlin", "00-950 Warszawa", "75008 Paris"; not a quantity with a unit ("1000 ML Saline")
    POSTCODE_TOWN = regex.compile(r"(?:^|(?<=,)[ \t]*|(?<=\n)[ \t]*)(\d{4}[ \t]?(?!ML|MG|KG|IU|MM|CM|HR|PM|AM|SS|SA|SD)[A-Z]{2}|"
                                  r"\d{5}|\d{2}-\d{3})[ \t]+(\p{Lu}\p{Ll}+(?:[ \t\-]\p{Lu}\p{Ll}+)?)(?=[ \t]*(?:$|[,.;\n]))",
                                  regex.M)
    STREET_KINDS = frozenset("Street St Avenue Ave Road Rd Boulevard Blvd Lane Ln Drive Dr Court Ct Way Place Pl Terrace "
                             "Tce Circle Highway Hwy Parkway Pkwy Close Crescent Cres Row Gardens Mews Square Sq Parade "
                             "Pde Esplanade Grove Walk Rise Quay Wharf Promenade Alley Plaza Trail Loop Pike Hospital Infirmary Clinic "
                             "Centre Center Practice Surgery Hospice House Lodge Manor".split())
    # Irish Eircodes: a routing key then four letters/digits ("R35 F2K8", "D6W XY12"); Irish counties "Co. Offaly";
    # an Indian PIN after a town and a dash ("Bengaluru – 560041")
    EIRCODE = re.compile(r"\b((?:[AC-FHKNPRTV-Y]\d{2}|D6W)[ \t](?=[0-9AC-FHKNPRTV-Y]{0,3}\d)(?=[0-9AC-FHKNPRTV-Y]{0,3}[A-Z])[0-9AC-FHKNPRTV-Y]{4})\b")
    COUNTY = regex.compile(r"\b(?:Co\.|County)[ \t]+(\p{Lu}\p{Ll}+)")
    PIN_AFTER_TOWN = regex.compile(r"(?<=\p{Lu}\p{Ll}+,?[ \t]*[–\-][ \t]*)(\d{6})(?!\d)|\b(?i:PIN(?:[ \t]*code)?|pincode)[ \t]*:?[ \t]*(\d{6})(?!\d)")
    LABELLED_PLACE = re.compile(r"\b(?i:lives\s+in|resident\s+of|city|town|county|hometown|born\s+in|moved\s+to)"
                                r"\s*:?\s+((?:[A-Z][a-z]+)(?:\s+(?:[A-Z][a-z]+|County))?)")

    def __init__(self):
        super().__init__(["LOCATION", "ZIP"], "location")

    def _address_tail(self, text: str, at: int) -> list[tuple]:
        """What continues an address that starts with a street: up to four comma-separated parts (LOCATION), then a
        state code joined to the last part, then a postcode (ZIP)."""
        out, end = [], at
        for _ in range(4):
            m = self.ADDRESS_PART.match(text, end)
            if not m or any(w in N.NOT_NAMES and w not in self.STREET_KINDS for w in m.group(1).split()):
                break
            from medllm.data.deid import lexicon as L

            if any(L.is_clinical(w) and not w[0].isupper() for w in m.group(1).split()):
                break
            out.append([m.start(1), m.end(1), "LOCATION", 0.75])
            end = m.end(1)
        st = self.ADDRESS_STATE.match(text, end)
        if st and st.group(1) in self.REGIONS and out:
            out[-1][1] = end = st.end(1)
        pc = self.ADDRESS_POSTCODE.match(text, end)
        return [tuple(p) for p in out] + ([(pc.start(1), pc.end(1), "ZIP", 0.75)] if pc else [])

    def spans(self, text):
        ends = []
        for rx in (self.STREET, self.STREET_EU):
            for m in rx.finditer(text):
                parts = self._address_tail(text, m.end())
                ends.append(max([m.end()] + [p[1] for p in parts if p[2] == "LOCATION"]))
                yield m.start(), m.end(), "LOCATION", 0.8
                yield from parts
        for end in ends:   # only right after a street: "3, 2025 Dear Dr" is a date and a greeting
            m = self.POST_CITY.match(text, end)
            if m and m.group(2).split()[0] not in N.NOT_NAMES:
                yield m.start(1), m.end(1), "ZIP", 0.7
                yield m.start(2), m.end(2), "LOCATION", 0.7
        from medllm.data.deid.recognizers import FacilityRecognizer

        ends += [m.end() for m in FacilityRecognizer.RX.finditer(text)]
        for end in ends:
            t = self.TOWN_AFTER.match(text, end)
            if t and not any(w in N.NOT_NAMES or w.upper() in self.REGIONS for w in t.group(1).split()):
                from medllm.data.deid import lexicon as L

                if not any(L.is_clinical(w) for w in t.group(1).split()):
                    st = self.ADDRESS_STATE.match(text, t.end(1))   # "Northbrook Urgent Care, Skokie, IL."
                    yield t.start(1), (st.end(1) if st and st.group(1) in self.REGIONS and "," in st.group(0) else
                                       t.end(1)), "LOCATION", 0.6
        for m in self.TOWN_POSTCODE.finditer(text):
            words = list(regex.finditer(r"[^ \t\-]+", m.group(1)))
            # "17 Tanner Row York YO1 6JB": the town is what follows the street's kind word
            while words and (words[0].group(0) in N.NOT_NAMES or any(w.group(0) in self.STREET_KINDS for w in words)):
                words.pop(0)
            if words:
                yield m.start(1) + words[0].start(), m.end(1), "LOCATION", 0.75
            yield m.start(2), m.end(2), "ZIP", 0.8
        for m in self.POSTCODE_TOWN.finditer(text):
            if m.group(2).split()[0] not in N.NOT_NAMES:
                yield m.start(1), m.end(1), "ZIP", 0.7
                yield m.start(2), m.end(2), "LOCATION", 0.7
        for m in self.UK_POSTCODE.finditer(text):
            yield m.start(1), m.end(1), "ZIP", 0.8
        for m in self.STREET_NAMED.finditer(text):
            if m.group(0).split()[0] not in N.NOT_NAMES:
                yield m.start(), m.end(), "LOCATION", 0.7
        for m in self.CITY_STATE_ZIP.finditer(text):
            if m.group(2) in self.AMBIGUOUS_REGIONS and "," not in text[m.end(1):m.start(2)]:
                continue   # "Language Line ID 40217": a label and a number, not Idaho
            if m.group(2) not in self.REGIONS or (len(m.group(3)) == 4 and m.group(2) not in
                                                  ("NSW", "VIC", "QLD", "SA", "WA", "TAS", "NT", "ACT")):
                continue
            if m.group(1).split()[0] not in N.NOT_NAMES:
                yield m.start(1), m.end(1), "LOCATION", 0.8
            yield m.start(3), m.end(3), "ZIP", 0.9
        for m in self.ZIP.finditer(text):
            yield m.start(1), m.end(1), "ZIP", 0.9
        for m in self.EIRCODE.finditer(text):
            yield m.start(1), m.end(1), "ZIP", 0.8
        for m in self.COUNTY.finditer(text):
            if m.group(1) not in N.NOT_NAMES and m.group(1) not in ("Ltd", "Limited", "Inc", "Kg", "Kgaa"):
                yield m.start(1), m.end(1), "LOCATION", 0.7   # "Pfizer Co. Ltd" is a company
        for m in self.PIN_AFTER_TOWN.finditer(text):
            g = 1 if m.group(1) else 2
            yield m.start(g), m.end(g), "ZIP", 0.75
        for m in self.LABELLED_PLACE.finditer(text):
            if m.group(1).split()[0] not in N.NOT_NAMES:
                yield m.start(1), m.end(1), "LOCATION", 0.6


# a specialist's role after a label is not a name: "Consultant Haematologist", "Attending Anesthesiologist"
ROLE_WORD = regex.compile(r"(?:ologist|iatrist|iatrician|ician|ographer|therapist|ologists)$")

# Unicode letters: "Ramírez", "Zieliński", "Sigurðardóttir" are names as much as "Ramirez"
_CAP = r"\p{Lu}[\p{L}'’\-]+"
_INITIAL = r"\p{Lu}\."
# name particles of Dutch, German, Romance, Arabic and Malay names ("van der Berg", "El Idrissi", "binte Rahmat")
_PARTICLE = r"(?i:van|der|den|de|la|von|del|della|di|da|le|du|dos|das|ter|ten|bin|binti|binte|bte|ibn|abu|al|el)"
_SURNAME = rf"(?:{_PARTICLE}\s+){{0,2}}{_CAP}"


class NameRecognizer(RegexRecognizer):
    """Names from context: titles, labels, signature lines and the gazetteer; then every other
    occurrence of a found name token in the same document (document-wide propagation)."""

    # initials, a nickname in brackets and up to three name words: "Mr C.J. (Kees) van der Berg", "Dr Nur Aisyah binte Rahmat"
    TITLE = regex.compile(rf"\b(?:{'|'.join(N.TITLES)})\.?\s+(?:(?:med|dent|rer|nat|phil|univ|habil)\.\s+)*"
                          rf"((?:{_INITIAL}[ \t]*){{0,3}}(?:\(\p{{Lu}}[\p{{L}}'’\-]+\)[ \t]+)?{_SURNAME}(?:[ \t]+{_SURNAME}){{0,2}})")
    # the value of a name field, words joined by single spaces (a column gap ends it); "B/O" (baby of), "S/O" (son of)
    # before the name; a trailing initial ("Arun Kumar P.")
    _LABEL_VALUE = (rf"(?:(?-i:[BSDWC]/[Oo])[ \t]+)?((?:{_INITIAL}[ \t]*){{0,3}}{_CAP}(?:[ \t](?:{_INITIAL}[ \t]*)?{_SURNAME}){{0,3}}"
                    rf"(?:[ \t]{_INITIAL})?)")
    LABEL = regex.compile(rf"(?i:\b(?:{'|'.join(re.escape(l) for l in sorted(N.NAME_LABELS, key=len, reverse=True))}))"
                          rf"(?![\p{{L}}])([ \t]*(?:[:\-]|is|was)?)\s+" + _LABEL_VALUE)
    COLON_LABEL = regex.compile(rf"(?i:\b(?:{'|'.join(re.escape(l) for l in sorted(N.COLON_NAME_LABELS, key=len, reverse=True))}))"
                                rf"[ \t]*:()[ \t]*" + _LABEL_VALUE)
    SIGNATURE = regex.compile(rf"((?:{_CAP}|{_INITIAL})(?:\s+(?:{_CAP}|{_INITIAL})){{1,2}}),?\s+(?:{'|'.join(N.CREDENTIALS)})\b")
    # "<Name> is a 54 year old ...": the classic opening line of a clinical note
    AGE_OPENING = regex.compile(rf"\b({_CAP}(?:\s+{_SURNAME}){{0,2}})\s+is\s+an?\s+\d{{1,3}}[\s-]*(?:year|yr|y/?o)")
    PAIR = regex.compile(rf"\b({_CAP})\s+((?:{_INITIAL}\s+)?)({_CAP})\b")
    RELATION = regex.compile(rf"\b(?:{'|'.join(N.RELATIONS)})[ \t]*,?[ \t]+({_CAP}(?:[ \t]+{_CAP})?)")

    EPONYM = re.compile(r"(?:'s?|’s?)?\s+(?:disease|syndrome|sign|palsy|test|scale|criteria|score|manoeuvre|maneuver|"
                        r"reflex|law|phenomenon|hyperthyroidism|thyroiditis|sarcoma|lymphoma|ulcer|fracture|staging|stage|"
                        r"classification|grade|class|index|position|procedure|operation|line|catheter|tube|balance|"
                        r"protocol|questionnaire|inventory|rules?|formula|equation|method|stain|block|pouch|repair|"
                        r"ratio|triad|biplane|negative|positive|diet|tremor|contracture|neuroma|cyst|node|regimen|delusion|technique|"
                        r"incision|splint|pessary|sling|manoeuvres?|maneuvers?|"
                        # eponymous devices and plural heads: "Blake drain", "Stokes-Adams attacks", "Aschoff bodies"
                        r"drains?|stents?|shunts?|valves?|needles?|clamps?|forceps|retractors?|masks?|cannulae?|nails?|"
                        r"frames?|bougies?|collars?|boots?|braces?|bags?|pumps?|filters?|sutures?|attacks?|episodes?|"
                        r"spells?|crisis|crises|effect|lesions?|bodies|cells|spots|nodules?|signs|syndromes|diseases|tests|"
                        r"scores|scales|fractures|ulcers|nodes|cysts|phenomena|count|counts|level|levels|assay)\b|"
                        # a scale compared with a threshold: "Abbey ≥ 8", "Wells > 4", "Braden <= 12"
                        r"\s*(?:≥|≤|>=|<=|>|<)\s*\d|"
                        # a named scale with its domain words between: "Abbey pain scale", "Morse fall scale",
                        # "Norton risk score", "Bristol stool chart", "Richmond agitation-sedation scale"
                        r"\s+(?:(?:pain|falls?|risk|coma|stool|agitation|sedation|agitation-sedation|depression|anxiety|"
                        r"severity|frailty|mobility|confusion|delirium|cognitive|nutrition(?:al)?|pressure|ulcer|"
                        r"sleepiness|bleeding|stroke|dementia|functional|activity|disability|mental|state|early|warning|"
                        r"triage|symptom|global|outcome|performance|status|wound|skin|clinical|rating|screening|"
                        r"assessment|behaviou?r(?:al)?|continence|swallow(?:ing)?|dyspnoea|dyspnea|breathlessness)\s+){1,3}"
                        r"(?:scale|score|chart|criteria|index|tool|questionnaire|inventory|rule|test|examination|assessment)\b",
                        re.I)

    def __init__(self):
        super().__init__(["NAME"], "names")

    @staticmethod
    def _trim(text: str, start: int, end: int):
        """Drop trailing/leading non-name words picked up by the capitalised-word patterns."""
        words = [(m.start() + start, m.end() + start) for m in regex.finditer(r"\S+", text[start:end])]
        keep = []
        for w in words:  # stop at the first word that cannot be part of a name ("Patient: Ann Lee Abdomen soft")
            word = text[w[0]:w[1]].strip(".,")
            if (word in N.NOT_NAMES and not re.fullmatch(r"[A-Z]\.", text[w[0]:w[1]])) or ROLE_WORD.search(word):
                if keep:
                    break
                continue
            keep.append(w)
        return (keep[0][0], keep[-1][1]) if keep else None

    def spans(self, text):
        found = []
        facility_starts = [m.start(1) if m.group(1) else m.start(2) for m in FacilityRecognizer.RX.finditer(text)]
        for rx, group, score in ((self.TITLE, 1, 0.9), (self.LABEL, 2, 0.8), (self.COLON_LABEL, 2, 0.8),
                                 (self.SIGNATURE, 1, 0.85), (self.RELATION, 1, 0.7), (self.AGE_OPENING, 1, 0.7)):
            for m in rx.finditer(text):
                if rx is self.LABEL and not m.group(1).strip() and m.group(2).isupper():
                    continue   # "(PATIENT CARE RECORD)": a heading in capitals, not "Patient: ANN LEE"
                if rx is self.COLON_LABEL and (regex.match(r"[ \t]+\p{Lu}", text[m.end(2):]) or
                                               FacilityRecognizer.RX.search(m.group(2))):
                    continue   # "To: Westfield Memory Assessment Service": a place, not a person
                if rx is self.RELATION and m.group(1).isupper() and len(m.group(1)) <= 6:
                    continue   # "Mother NRIC", "husband AA": an acronym or a genotype, not a name
                span = self._trim(text, m.start(group), m.end(group))
                if span:
                    # "Dr Harriet Pemberton-Shaw Castlegate Surgery": the name ends where a facility's name begins
                    cut = [f for f in facility_starts if span[0] < f < span[1]]
                    if cut:
                        span = (span[0], span[0] + len(text[span[0]:min(cut)].rstrip()))
                    found.append((span[0], span[1], "NAME", score))
        for m in self.PAIR.finditer(text):
            first, last = m.group(1), m.group(3)
            if (first in N.FIRST_NAMES and last not in N.NOT_NAMES) or \
                    (last in N.LAST_NAMES and first not in N.NOT_NAMES):
                found.append((m.start(), m.end(), "NAME", 0.75))
        # eponyms are diseases, not people: "Wilson disease", "Bell's palsy", "Graves' hyperthyroidism"
        found = [f for f in found if not self.EPONYM.match(text, f[1])]
        yield from found
        tokens = {t for s, e, *_ in found for t in regex.findall(_CAP, text[s:e]) if t not in N.NOT_NAMES and len(t) > 1}
        if tokens:
            rx = regex.compile(r"(?<![\p{L}\-])(" + "|".join(regex.escape(t) for t in sorted(tokens, key=len, reverse=True))
                               + r")(?![\p{L}])")
            for m in rx.finditer(text):
                if not clinical_use(text, m.start(), m.end()):
                    yield m.start(), m.end(), "NAME", 0.6


SCORE_AFTER = regex.compile(r"(?:'s?|’s?)?\s*(?:\(?\d|[≥≤<>]=?\s*\d|[IV]{1,4}\b|[+-]\s|score|type\s)")


def clinical_use(text: str, start: int, end: int) -> bool:
    """An eponym used clinically at this place: "Dr. Wells" is a person, "Wells 2", "Wells score",
    "Graves' disease", "Berg balance" are not. Used to keep propagation of a found name off them."""
    from medllm.data.deid import lexicon as L

    token = text[start:end]
    if not L.is_clinical(token):
        return bool(NameRecognizer.EPONYM.match(text, end))
    before = text[max(0, start - 6):start]
    if regex.search(r"(?:Dr|Mr|Mrs|Ms|Prof)\.?\s+(?:\p{Lu}\.\s*)?$", before):
        return False
    return bool(SCORE_AFTER.match(text, end) or NameRecognizer.EPONYM.match(text, end))


class FacilityRecognizer(RegexRecognizer):
    """Hospitals, clinics, practices, homes and schools named by a run of capitalised words that ends
    in what the place is ("St. Brigid's Hospital", "Bramley Road Health Centre", "Mercy General")."""

    KINDS = (r"Hospital|Clinic|Cl[ií]nica|Medical[ \t]+(?:Center|Centre|Group)|Health[ \t]+(?:Center|Centre|System|Services?|"
             r"Partners|Network|Trust|Unit)|Family[ \t]+Health|Infirmary|Senior[ \t]+Living|Assisted[ \t]+Living|"
             r"Associates|Care[ \t]+Center|Care[ \t]+Centre|Medical[ \t]+Associates|Treatment[ \t]+Center|Urgent[ \t]+Care|"
             r"Surgery|Practice|Nursing[ \t]+Home|Care[ \t]+Home|Rehabilitation[ \t]+(?:Center|Centre|Hospital)|Hospice|"
             r"Orthopaedics|Orthopedics|Neurodiagnostics|Imaging|Radiology|Dialysis|School|Academy|University|College|"
             r"Manor|Lodge|(?:Assessment[ \t]+)?Service|Regional|General|Memorial|Philharmonic|Bakery|Pharmacy|"
             # named centres and groups: "Hillcrest Oncology Centre", "Brazos Valley Behavioral Health",
             # "Severnside Pathology Partnership"; the word for hospital in other languages ("Ysbyty Glan Teifi")
             r"(?:Oncology|Cancer|Eye|Heart|Surgical|Day[ \t]+Surgery|Specialist|Diagnostic|Community|Women'?s|Children'?s|"
             r"Maternity|Renal|Cardiac|Fertility|Dental|Skin|Sleep|Breast|Stroke|Burns|Spinal)[ \t]+(?:Centre|Center|Institute|Hospital|Unit)|"
             r"Behaviou?ral[ \t]+Health|Partnership|Laboratories|Diagnostics|Ysbyty|Ospid[eé]al|H[oô]pital|Krankenhaus|"
             r"Klinikum|Ziekenhuis|Ospedale|Sjukhus|Sykehus|"
             # NHS bodies and community teams: "… NHS Foundation Trust", "… Community Mental Health Team", "… Health Board"
             r"(?:NHS[ \t]+)?Foundation[ \t]+Trust|NHS[ \t]+Trust|Health[ \t]+Board|Care[ \t]+Board|(?:Mental[ \t]+)?Health[ \t]+Team|"
             r"Community[ \t]+Team")
    # a practice named by a place and its specialty: "Cascadia Pediatric & Family Endocrinology", "Lakeside Dermatology"
    SPECIALTY = (r"(?:Endocrinology|Dermatology|Cardiology|Neurology|Gastroenterology|Urology|Oncology|Ophthalmology|"
                 r"Rheumatology|Nephrology|Pulmonology|Orthopaedics|Orthopedics|Pediatrics|Paediatrics|Obstetrics|Gynecology|"
                 r"Gynaecology|Psychiatry|Podiatry|Audiology|Optometry|Physiotherapy|Physical[ \t]+Therapy|Chiropractic|"
                 r"Allergy|Women'?s[ \t]+Health|Family[ \t]+Medicine|Internal[ \t]+Medicine|Sports[ \t]+Medicine|Pain[ \t]+Management)")
    # words that only say what kind of service a unit is ("Department of Diagnostic Radiology", "General Surgery",
    # "Clinical Pharmacy", "General Adult Psychiatry"): a run of them names no place
    GENERIC = frozenset("Diagnostic Interventional General Clinical Adult Adults Older People Child Children Adolescent "
                        "Paediatric Pediatric Emergency Internal Vascular Plastic Orthopaedic Orthopedic Cardiac Cardiothoracic "
                        "Thoracic Colorectal Upper Lower GI Breast Hepatobiliary Trauma Acute Critical Intensive Care Community "
                        "Mental Health Learning Disability Disabilities Family Medicine Surgery Surgical Pharmacy Psychiatry "
                        "Radiology Imaging Neuro Neurosurgery Hospital Specialist Services Service Outpatient Inpatient Day "
                        "Ambulatory Renal Respiratory Stroke Palliative Rehabilitation Geriatric Elderly Women's Womens "
                        "Maternity Neonatal Sexual Dental Oral Maxillofacial Head Neck Liaison Perinatal Forensic Addiction "
                        "Addictions Substance Misuse Home Treatment Crisis Memory Team Unit Department of and & Practitioner Practitioners "
                        "Physician Physicians Nurse Nurses Doctor Doctors".split())
    RX = re.compile(rf"\b((?:(?:St\.?|Saint|[A-Z][\w'’\-]+)(?:[ \t]+&)?[ \t]+){{1,6}}(?:{KINDS}|(?<=[&\w]\s){SPECIALTY}))\b"
                    rf"|\b((?:{KINDS})[ \t]+(?:[A-Z][\w'’\-]+[ \t]?){{1,3}})")
    # "at St Vincent's", "St. Luke's ED": a saint's name is a hospital's name (St John's wort is a herb)
    SAINT = re.compile(r"\b(?:St\.?|Saint)\s+[A-Z][a-z]+(?:'s|’s)?(?:\s+[A-Z][a-z]+)?")
    NOT_SAINT = re.compile(r"(?:'s|’s)?\s+(?:wort|dance|fire)\b", re.I)
    # a place of care named without a kind word: "dialysis unit at DaVita Eastgate", "Location: Harborview ED",
    # "works as a bus driver for MBTA" (an employer locates a patient as a facility does)
    CONTEXT = regex.compile(r"(?:\b(?:unit|ward|clinic|centre|center|facility|home|practice|pharmacy|department|lab|"
                            r"dialysis|rehab|hospice)\s+(?:at|in)|\b(?i:location|site|facility|place\s+of\s+service|"
                            r"hospital|institution|employer)\s*:|\b(?i:works?)\s+(?:as\s+an?\s+[\w\s]{2,30}?\s+)?(?:for|at))"
                            r"\s+((?:\p{Lu}[\p{L}'’&\-]*)(?:\s+\p{Lu}[\p{L}'’&\-]*){0,3})")

    PUBLICATION = re.compile(r"\s+(?:Patterns?|Guidelines?|Guidance|Standards?|Statements?|Bulletin|Framework|"
                             r"Recommendations?|Parameters?|Committee|Manual|Handbook|Pathways?|Consensus|Position)\b")

    def __init__(self):
        super().__init__(["FACILITY"], "facilities")

    def spans(self, text):
        for m in self.RX.finditer(text):
            g = 1 if m.group(1) else 2
            if self.PUBLICATION.match(text, m.end(g)):
                continue   # "AAO Preferred Practice Pattern", "Primary Care Guidelines": a document, not a place
            words = m.group(g).split()
            i = 0
            while i < len(words) - 1 and (words[i] in N.NOT_NAMES or words[i].lower() in ("to", "at", "from")):
                i += 1   # "Admitted General" is not a place; "Hospital Course" is a heading
            if g == 1 and i >= len(words) - 1:
                continue
            generic = [w in self.GENERIC or w in N.NOT_NAMES or bool(re.fullmatch(self.SPECIALTY, w)) for w in words]
            if all(generic[i:]) or (g == 2 and all(generic[1:])):
                continue   # "General Surgery", "Clinical Pharmacy", "Community Mental Health Team": a service, no place
            if g == 1 and re.fullmatch(self.SPECIALTY, words[-1]) and not re.search(rf"(?:{self.KINDS})$", m.group(g)):
                from medllm.data.deid import lexicon as L

                if L.zipf(words[i]) >= 4.0 or L.is_clinical(words[i]):
                    continue   # a practice is named by a place or a person ("Lakeside Dermatology"), not "Paeds Neurology"
            start = m.start(g) + len(" ".join(words[:i])) + (1 if i else 0)
            if g == 2 and (words[1] in N.NOT_NAMES or words[1] in ("Medicine", "Surgery", "Practice", "Paediatrics",
                                                                 "Pediatrics", "Psychiatry", "Ward", "Team")):
                continue
            yield start, m.end(g), "FACILITY", 0.7
        for m in self.SAINT.finditer(text):
            if not self.NOT_SAINT.match(text, m.end()) and not self.NOT_SAINT.match(text, m.end() - 2):
                yield m.start(), m.end(), "FACILITY", 0.6
        for m in self.CONTEXT.finditer(text):
            words = m.group(1).split()
            while words and (words[-1] in N.NOT_NAMES or (words[-1].isupper() and len(words) > 1)):
                words.pop()   # "Harborview ED", "Quest Diagnostics Today"
            from medllm.data.deid import lexicon as L

            if len(words) == 1 and words[0] in L.NATIONAL_ORGS:
                continue   # "pharmacist at Walgreens": a chain's name alone locates nobody
            if words and words[0] not in N.NOT_NAMES:
                yield m.start(1), m.start(1) + len(" ".join(words)), "FACILITY", 0.6


class RegexPatternRecognizer(PatternRecognizer):
    pass


# a ratio right after a drug or before a unit is a dose: "co-careldopa 12.5/50", "Madopar 6/25", "1/2 tab"
DOSE_UNIT_AFTER = regex.compile(r"\s*(?:mg|mcg|µg|micrograms?|g|ml|mL|units?|IU|tabs?|tablets?|caps?|capsules?|puffs?|"
                                r"drops?|%|mmol|mEq)(?![\p{L}])", regex.I)
DRUG_BEFORE = regex.compile(r"(?:\bco-[a-z]+|\b[\p{L}]*(?:dopa|pril|sartan|olol|statin|azole|mycin|cillin|floxacin|"
                            r"parin|prazole|dipine|formin|flozin|gliptin|mab|nib|azepam|tidine|vir))\s*$", regex.I)


SCORE_FRACTION = regex.compile(r"^\d{1,2}/\d{1,2}$")
SCORE_WORDS = frozenset("day days power strength pain score grade allred cycle dose week weeks tone reflexes gcs of".split())
# a fraction after a movement, a pain word or another fraction is a score: "hip flexion 3/5", "grip 2/5", "pain 8/10 ->
# 4/10", "R shoulder 3/10", "5/5 palpable" (fifths of the head palpable)
SCORE_CONTEXT = regex.compile(r"(?i:\b(?:pain|ache|flexion|extension|abduction|adduction|rotation|dorsiflexion|"
                              r"plantarflexion|grip|power|strength|mrc|vas|nrs|score|scored|rated)\b[^.;\n]{0,25}$|"
                              r"\d/\d{1,2}\s*(?:->|→|to|then|and|,)\s*$)")
SCORE_FOLLOW = regex.compile(r"\s*(?:palpable|power|strength|fifths)\b", regex.I)
DATE_LABELS = frozenset("DOB DOD DOA DOS LMP EDD EDC DOI".split())


class DateRecognizer(PatternRecognizer):
    """Date patterns, minus numbers that are doses in context (a drug name before, a unit after)."""

    def __init__(self):
        super().__init__(supported_entity="DATE", name="dates", patterns=DATE_PATTERNS)

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        from medllm.data.deid import lexicon as L

        out = []
        for r in super().analyze(text, entities, nlp_artifacts, regex_flags) or []:
            value = text[r.start:r.end]
            if value[:1].isdigit() and not value.isdigit():
                before = text[max(0, r.start - 30):r.start]
                prev = (before.split() or [""])[-1]
                if SCORE_FRACTION.match(value) and (prev.lower().strip(":(") in SCORE_WORDS or
                                                    (regex.fullmatch(r"\p{Lu}{2,5}\d?:?", prev) and prev.strip(":") not in DATE_LABELS)):
                    continue   # "ER 8/8", "PR 6/8" (Allred), "day 5/5", "power 4/5": a score or a count
                if SCORE_FRACTION.match(value) and (SCORE_CONTEXT.search(before) or SCORE_FOLLOW.match(text, r.end)) and \
                        not regex.search(r"(?i:\b(?:on|since|from|until|by|dated?|seen|due)\s*$)", before):
                    continue
                if DOSE_UNIT_AFTER.match(text, r.end) or DRUG_BEFORE.search(before) or L.is_brand(prev):
                    continue
            out.append(r)
        return out


def build_recognizers(ner_model: str | None = None) -> list[EntityRecognizer]:
    from presidio_analyzer.predefined_recognizers import IpRecognizer, UsSsnRecognizer

    recs: list[EntityRecognizer] = [
        OfflineEmailRecognizer(),
        PlausibleUrlRecognizer(),
        IpRecognizer(supported_entity="IP"),
        UsSsnRecognizer(supported_entity="SSN"),
        # SSN-shaped numbers presidio rejects as invalid are still identifiers to remove
        PatternRecognizer(supported_entity="SSN", name="ssn_shape",
                          patterns=[Pattern("ssn", r"\b\d{3}-\d{2}-\d{4}\b", 0.6)]),
        PatternRecognizer(supported_entity="VEHICLE", name="vin",
                          patterns=[Pattern("vin", r"\b[A-HJ-NPR-Z0-9]{17}\b", 0.5)]),
        DateRecognizer(),
        LabelledIdRecognizer(), PhoneFaxRecognizer(), AgeOver89Recognizer(), LocationRecognizer(), NameRecognizer(),
        FacilityRecognizer(),
    ]
    from medllm.data.deid.statistical import StatisticalNameRecognizer

    recs.append(StatisticalNameRecognizer())
    if ner_model:
        from medllm.data.deid.ner import LocalNerRecognizer

        recs.append(LocalNerRecognizer(ner_model))
    return recs
