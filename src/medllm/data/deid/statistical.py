"""Names without cues: runs of capitalised tokens scored by the lexicon (census name frequency
against English word frequency), plus ``Surname, Given M.`` headers, relatives/contacts and
document-wide propagation of every name token found by any recognizer.

Precision guards, each because a real note needed it: a lone token at the start of a sentence or
line needs a higher score (headings and sentence-initial words are capitalised anyway); clinical
morphology ("-itis", "-mab", "-ectomy"...) and a dose right after the token mean a drug or finding;
eponyms followed by disease/sign/score words are clinical, not people."""
from __future__ import annotations

import regex

from presidio_analyzer import RecognizerResult

from medllm.data.deid import lexicon as L
from medllm.data.deid import names as N
from medllm.data.deid.recognizers import NameRecognizer, RegexRecognizer, clinical_use

TOKEN = r"\p{Lu}[\p{L}'’\-]*\p{L}"
PARTICLES = r"(?i:van|der|den|de|la|von|del|della|di|da|le|bin|binti|binte|bte|ibn|abu|al|el|dos|das|du|ter|ten)"
RUN = regex.compile(rf"(?<![\p{{L}}\-])(?:{TOKEN}|\p{{Lu}}\.)(?:[ \t]+(?:{PARTICLES}[ \t]+)?(?:{TOKEN}|\p{{Lu}}\.))*")
STRONG_ENDINGS = ("itis", "osis", "emia", "aemia", "ectomy", "otomy", "ostomy", "plasty", "scopy", "graphy", "ology",
                  "mab", "nib", "parin", "pril", "sartan", "olol", "statin", "azole", "mycin", "cillin", "cycline",
                  "floxacin", "zumab", "ximab", "prazole", "dipine", "tidine", "gliptin", "flozin", "uria", "algia",
                  "pathy", "plegia", "trophy", "lysis", "cytes", "philia", "penia", "ectasis", "megaly",
                  # organism genera ("Peptoniphilus", "Parabacteroides") and English adverbs ("Pharmacologically,")
                  "coccus", "cocci", "bacter", "bacterium", "bacteria", "monas", "myces", "mycetes", "plasma",
                  "bacillus", "virus", "ically", "ally", "ously", "ively", "fully", "lessly", "ingly",
                  # specialists' titles: "Consultant Histopathologist", "Paediatrician"
                  "ologist", "ologists", "iatrist", "iatrician",
                  # departments and roles in German, French, Dutch, Spanish notes ("Kardiologie", "Allgemeinmedizin",
                  # "Oberarzt", "Internistische"), therapies ("Physiotherapy")
                  "ologie", "ología", "ologia", "medizin", "heilkunde", "chirurgie", "arzt", "ärztin", "therapie", "therapy",
                  "iatrie", "istische", "ische", "ischen")
CLINICAL_ENDINGS = ("itis", "osis", "emia", "aemia", "ectomy", "otomy", "ostomy", "plasty", "scopy", "graphy", "ology",
                    "mab", "nib", "parin", "pril", "sartan", "olol", "statin", "azole", "mycin", "cillin", "cycline",
                    "floxacin", "vir", "tide", "zumab", "ximab", "prazole", "dipine", "tidine", "gliptin", "flozin",
                    "ine", "ide", "ate", "ated", "ing", "tion", "sion", "ment", "ness", "ity", "ous", "ive", "ary",
                    "al", "ic", "ed", "ist", "er", "ia", "ers", "ies", "oid", "gram", "uria", "algia", "pathy", "plegia",
                    "trophy", "cele", "oma", "ase", "sis", "lysis", "phage", "cyte", "cytes", "philia", "penia")
# Greek/Latin combining forms of medical words ("Electrocardiogram", "Hematologic", "Syringomyelia"): a rare
# capitalised word built from them is a term, not a foreign name. Census names are never vetoed this way.
MEDICAL_ROOT = regex.compile(r"(?i)^(?:electro|cardi|ha?em(?:o|at)|gastr|neur|nephr|hepat|pulmon|oste|arthr|dermat|"
                             r"ophthalm|cyto|myel|chol|pyel|ur(?:o|eth|et)|trans|poly|hydro|chondr|entero|endo|hyper|hypo|"
                             r"thromb|angi|encephal|immun|patho|pharyng|laryng|rhin|onco|scler|fibr|glyc|lymph|myo|psych|"
                             r"pneum|spondyl|syring|vesic|cyst|colo|proct|pancrea|thyr|adren|crani|cephal|cortic|vascul|"
                             r"ventric|atri|o?esophag|broncho|trache|leuk|erythr|prosta|gyn|obstet|ortho|radio|sono|tomo|"
                             r"cytomegalo|influenz|leishman|trichomon|toxo|strepto|staphylo|mening|amblyo|astigmat|"
                             r"nebul|prophyla|periton|perica|pleur|derm)")
MEDICAL_END = ("gram", "graph", "graphic", "logic", "logical", "iasis", "virus", "globin", "rrhea", "rrhoea", "plasia",
               "scopic", "metry", "genic", "ptysis", "itis", "osis", "lithiasis", "myelia", "trophy", "oid", "otic")
# head nouns of a clinical phrase: a capitalised run that contains one is a term ("Aplastic Anemia", "Edward Syndrome")
CLINICAL_HEAD = regex.compile(r"(?i)^(?:syndrome|disease|disorder|an(?:a)?emia|sclerosis|injury|tests?|counts?|procedure|"
                              r"imaging|flutter|fibrillation|fever|failure|infection|cancer|carcinoma|tumou?rs?|virus|"
                              r"panel|scan|x-ray|function|hydrocephalus|suppurativa|ulcer|pox|palsy|dystrophy|"
                              r"deficiency|insufficiency|hypertension|diabetes|arthritis|fracture|block|therapy|cancers?|"
                              r"carcinomas?|lymphoma|leuka?emia|neoplasm|mass|lesions?|polyps?|nodules?|cysts?)[.,;:]?$")
DOSE_AFTER = regex.compile(r"\s*\(?\d+(?:\.\d+)?\s*(?:mg|mcg|g|units?|ml|mL|IU|mmol|%|/)", regex.I)
EPONYM_AFTER = NameRecognizer.EPONYM
RELATIVES = N.RELATIONS + ("newborn", "baby", "child", "stepson", "stepdaughter", "great-nephew",
             "great-niece", "daughter-in-law", "son-in-law", "sister-in-law", "brother-in-law", "granddaughter-in-law",
             "mother-in-law", "father-in-law", "ex-partner", "ex-wife", "ex-husband", "manager", "educator",
             "counselor", "counsellor", "sonographer", "interpreter", "caller", "proxy", "NOK", "HCP", "POA", "OT",
             "PT", "SLP", "RN", "fellow", "prefers", "called", "nurse in charge", "known as", "goes by")
RELATION = regex.compile(rf"(?i:\b(?:{'|'.join(regex.escape(r) for r in sorted(RELATIVES, key=len, reverse=True))}))"
                         rf"\b\)?[ \t]*[,:(]?[ \t]*[\"“‘']?(?:is[ \t]+|was[ \t]+)?(?:(?:Dr|Mr|Mrs|Ms|Miss|Prof)\.?[ \t]+)?"
                         rf"((?:{TOKEN}|\p{{Lu}}\.)(?:[ \t]+(?:{TOKEN})){{0,2}}(?:[ \t]+\p{{Lu}}\.)?)")
# a relative named in lower case, as patients and carers type in portals and as nurses jot it: "partner luc", "Partner
# jase rang"; only a word that is hardly English ("luc", "jase"), never "partner says" or "son visiting"
# ("friend/teammate malia": two relation words joined by a slash)
LOWER_RELATION = regex.compile(rf"(?i:\b(?:{'|'.join(N.RELATIONS)})(?:/\p{{L}}+)?)[ \t]+(\p{{Ll}}[\p{{Ll}}'’\-]{{2,14}})(?![\p{{L}}\-])")
# a name typed in lower case after a name field ("pt: sione faleolo, 24M"): only words that are hardly English
LOWER_LABELLED = regex.compile(r"(?i:\b(?:pt|patient|patient\s+name|pt\s+name|client|resident)[ \t]*:)[ \t]*"
                               r"(\p{Ll}[\p{Ll}'’\-]{2,20}(?:[ \t]\p{Ll}[\p{Ll}'’\-]{2,20}){0,2})(?![\p{L}\-])")
# a person named right before a reporting verb at the start of a sentence: "Seun says baby is moving well"
SPEECH_AFTER = regex.compile(r"[ \t]+(?:says|said|reports|reported|states|stated|feels|felt|denies|denied|asks|asked|wants|"
                             r"wanted|prefers|understands|agrees|agreed|declines|declined|rang|phoned|called|confirms|"
                             r"confirmed|explains|explained|tells|told|mentions|mentioned|notes|noticed|thinks|worries|"
                             r"would\s+like|is\s+(?:worried|concerned|aware|keen|happy|unsure))\b")
# another name the person goes by: "letters have him as Bill", "aka Toni", "née Kowalski"
ALIAS = regex.compile(rf"(?:\b(?:him|her|them)[ \t]+as|(?i:\b(?:aka|a\.k\.a\.|alias|n[ée]e|also\s+known\s+as|formerly)))[ \t]+"
                      rf"[\"“‘']?({TOKEN}(?:[ \t]+{TOKEN})?)")
# an initial and a surname after a role or a relation ("reg S. O'Loughlin", "CNM T. Halvorsen", "W/o R. Ramaswamy") or
# standing alone when the surname is hardly an English word
INITIAL_ANY = regex.compile(rf"(?<![\p{{L}}.\-/&])(\p{{Lu}}\.[ \t]?(?:\p{{Lu}}\.[ \t]?)?{TOKEN})(?![\p{{L}}])")
ROLE_BEFORE = regex.compile(r"(?i:\b(?:reg|registrar|CNM|NUM|CNS|CNC|ANUM|RN|RM|EN|SpR|SHO|FY[12]|HO|JMO|RMO|intern|resident|"
                            r"fellow|consultant|midwife|physio|OT|SLT|SW|nurse|sister|charge|[WSDCH]/o|by|with|from|to|cc)\.?[ \t]+)$")
NOT_AFTER_INITIAL = regex.compile(r"(?i:\b(?:vitamin|hepatitis|hep|type|group|grade|class|stage|zone|level|phase|factor|"
                                  r"lead|appendix|plan|option|section|part|schedule|figure|table|annex|list|category|"
                                  r"tier|step|ward|bay|bed|room|block|wing|floor|unit)\s+)$")
# a nickname in quotes or brackets right after a found name: 'Renee ("Nay-Nay")', 'Oluwatoyin ("Toyin")'
NICKNAME = regex.compile(r"[ \t]*\(?[ \t]*[\"“‘']([\p{Lu}][\p{L}'’\-]{1,20}(?:[ \t][\p{Lu}][\p{L}'’\-]+)?)[\"”’']\)?")
# "Okafor, Chidi E." / "HALVORSEN, INGRID" at the start of a line (or after Patient:/Re:)
HEADER = regex.compile(rf"(?m)(?:^|(?i:patient|name|re|pt)\s*:?\s+|(?i:note|summary|record)[ \t]+)(\p{{Lu}}[\p{{L}}'’\-]+(?:[ \t]\p{{Lu}}[\p{{L}}'’\-]+)?),\s+(\p{{Lu}}[\p{{L}}'’\-]+)(?:[ \t]+\p{{Lu}}(?:\.|(?![\p{{L}}'’\-.])))?(?=\s|$|,)")
# compound given names after a surname-first header: "Jiménez Ortega, María José", "NGUYEN, Thi Mai"
HEADER_GIVEN_MORE = regex.compile(rf"[ \t]+(\p{{Lu}}[\p{{L}}'’\-]+)(?=[ \t]*(?:$|[,;(—–\-]|\d|\p{{Lu}}\.)|[ \t]{{2,}}|"
                                  rf"[ \t]+(?:DOB|D\.O\.B|MRN|NHS|NHI|Hosp|Acc|Age|born|Patient\s+ID)\b)", regex.M)
# "F. Abubakar (FY2)", "— J. Okonkwo, registrar": an initial before a surname that is signed or given a role
INITIAL_SURNAME = regex.compile(rf"(?<![\p{{L}}.])(\p{{Lu}}\.[ \t]?(?:\p{{Lu}}\.[ \t]?)?{TOKEN})(?=[ \t]*(?:\((?:FY\d|ST\d|CT\d|PGY-?\d|"
                            rf"SHO|SpR|RN|RMN|HCA|MD|NP|PA|registrar|resident|intern|consultant|fellow)\b|,[ \t]*(?:registrar|resident|"
                            rf"intern|consultant|fellow|nurse|RN|MD|NP|PA|FY\d)\b))")
LETTER = regex.compile(rf"(?im)^(?:dear|hi|hello|hey|good\s+(?:morning|afternoon|evening)|to|from|re|caller|sent by|referrer|kind regards,?|yours sincerely,?|best,?|thanks,?|"
                       rf"regards,?|signed|response by|reply from|spoke with|asked to see|handed over by|read by|"
                       rf"(?:kind |best |warm )?regards,?[ \t]*\n|yours (?:sincerely|faithfully|truly),?[ \t]*\n|"
                       rf"sincerely,?[ \t]*\n|with thanks,?[ \t]*\n)"
                       rf"(?:[ \t:,]+|(?<=\n))(?:(?:Dr|Mr|Mrs|Ms|Prof)\.?\s+)?((?:{TOKEN}|\p{{Lu}}\.)(?:[ \t]+{TOKEN})*)")
LOCATIVE = regex.compile(rf"(?i:\b(?:lives\s+(?:in|on|at)|from|in|to|moving\s+from|moved\s+to|flies\s+in\s+from|"
                         rf"visits\s+from|calls?\s+from|at|near|on))\s+((?:{TOKEN})(?:\s+{TOKEN}){{0,2}})")
# "Ravi Subramaniam, 58M." / "Liam O'Donoghue, 14 months" / "Name (MRN ...": a person is being introduced
APPOSITION = regex.compile(r",?\s*(?:\d{1,3}\s*(?:[MF]\b|y/?o\b|yo\b|years?\b|yrs?\b|months?\b|weeks?\b|-year)|\d{1,3},|"
                           r"\(?(?:MRN|DOB|d\.o\.b|Acc|Encounter|acct)|aged\s+\d|"
                           # an age written out: "Bertrand Lacroix-Duval, ninety-six, metastatic ..."
                           r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[\s-](?:one|two|three|four|five|six|"
                           r"seven|eight|nine))?|(?:a|one)\s+hundred(?:(?:\s+and)?[\s-]\w+)?)(?:[\s-]years?(?:[\s-]old)?)?[,.;)])",
                           regex.I)
LETTER_WORDS = frozenset("Best Thanks Regards Cheers Sincerely Yours Hi Hello Dear Yes No Okay Also However Otherwise "
                         "Then Again Today Overnight Findings Impression Plan Assessment Colleague Colleagues Sir Madam "
                         "All Team Doctor Everyone".split())
ROLE_TITLES = frozenset("Consultant Registrar Surgeon Pharmacist Secretary Midwife Physiotherapist Nurse Specialist "
                        "Senior Junior Charge Staff Clinical Medical Nursing Ward Practice".split())
ROLE_ENDING = regex.compile(r"(?:ologist|iatrist|ician|ographer|therapist|ist|eon)$")
SENTENCE_START = regex.compile(r"(?:^|[.!?:;\"“(—\-•*]\s*|\n\s*)$")


def _clinical_shape(tok: str, strong_only: bool = False) -> bool:
    """Drug/finding morphology; the weak endings ("-ine", "-er", "-ed") only count for words that
    would be capitalised anyway (start of a sentence), since names end that way too."""
    low = tok.lower().strip(".,;:")
    if L.census()[0].get(tok) is not None or L.census()[1].get(tok) is not None:
        return False
    # a double-barrelled name with a census part ("Lacroix-Duval", "Ferraro-Bianchi") is a name, whatever its ending
    if "-" in tok and any(len(p) > 1 and (p.capitalize() in L.census()[0] or p.capitalize() in L.census()[1])
                          for p in tok.strip(".,;:").split("-")):
        return False
    if len(low) >= 7 and (MEDICAL_ROOT.match(low) or low.endswith(MEDICAL_END)):
        return True
    return any(low.endswith(e) for e in (STRONG_ENDINGS if strong_only else STRONG_ENDINGS + CLINICAL_ENDINGS))


def _lowercase_elsewhere(text: str, tok: str) -> bool:
    """The same word written in lower case elsewhere in the document is a common noun ("Kidney
    function tests (kidney function test)"); names keep their capital."""
    low = tok.strip(".,;:").lower()
    return len(low) > 2 and low != tok and bool(regex.search(rf"(?<![\p{{L}}\-]){regex.escape(low)}(?![\p{{L}}])", text))


# shapes of terms, never names: "C-reactive", "B-cell", "FDG-avid", "HER2-positive" (a letter or an acronym, a
# hyphen, a lower-case word); coagulation factors
# "Xa", "IXa", "VIIa"; a genus before "sp."/"spp." ("Nocardia spp.")
TERM_SHAPE = regex.compile(r"^(?:\p{L}+-Nr\.?$|\p{Lu}-\p{Ll}|\p{Lu}{2,}\d*-\p{Ll}|(?:X{0,1}I{0,3}V?I{0,3}|IX|XI{1,3})a$)")
SPECIES_AFTER = regex.compile(r"\s+spp?\.")
# a lower-case clinical noun right after a capitalised word makes it a term: "Kidney function tests", "Plain x-ray",
# "Rectal examination" (a person's name is not followed by these)
TERM_AFTER = regex.compile(r"[ \t]+(?:function|x-?rays?|films?|radiographs?|examinations?|exam|biops(?:y|ies)|ultrasound|"
                           r"panel|swabs?|cultures?|infusion|imaging|bleeding|prolapse|fissure|abscess|polyps?|stones?|"
                           r"transplant|failure|glands?|vessels?|arter(?:y|ies)|veins?|nerves?|tissue|cells?)\b")


def _odd_case(tok: str) -> bool:
    """HFrEF, SpO2, FiO2, KCl: lab and physiology notation, not names (McAllister, O'Neil are fine)."""
    if TERM_SHAPE.match(tok.strip(".,;:")):
        return True
    for part in regex.split(r"[-'’]", tok.strip(".,;:")):
        # MacLennan, McAllister: the capital after Mac/Mc is the name's own initial
        body = part[4:] if part.startswith("Mac") and len(part) > 4 and part[3].isupper() else \
            part[3:] if part.startswith("Mc") else part[1:]
        if any(c.isupper() for c in body) and not part.isupper():
            return True
    return False


# a run of capitals is cut after a facility's kind word: "Eastwick Hospice Bertrand Lacroix-Duval" is a place and
# then a person (the facility recognizer owns the part up to the kind word)
FACILITY_KIND_WORDS = frozenset("Hospital Hospice Clinic Infirmary Practice Surgery Centre Center Lodge Manor Trust "
                                "Pharmacy Unit Ward".split())


# German capitalises every noun: in a German note a capitalised everyday German word ("Becken", "Befund") or a
# noun/adjective by its ending ("Zuweiserin", "Diagnostische", "Radiologie") is no name without a cue; a census
# name ("Weber", "Fischer") or a rare surname ("Obermaier") still scores
GERMAN_FUNCTION_WORDS = regex.compile(r"(?<![\p{L}])(?:und|der|das|mit|für|bei|nach|kein(?:e|en|er)?|nicht|ist|wurde|von|zur|zum|im|ohne|dem|eine|einer|"
                                   r"über|unter|auf|aus|sowie|bzw|geb|unauffällig|links|rechts)(?![\p{L}])")
GERMAN_ENDINGS = ("ung", "ungen", "heit", "keit", "schaft", "erin", "isch", "ische", "ischen", "isches", "ischer", "logie",
                  "ie", "tät", "nahme", "mittel")


def _is_german(text: str) -> bool:
    return len(GERMAN_FUNCTION_WORDS.findall(text)) >= max(3, len(text) // 400)


def _german_noun(tok: str) -> bool:
    from wordfreq import zipf_frequency

    t = tok.strip(".,;:()/")
    first, last = L.census()
    if t in first or t in last:
        return False
    low = t.lower()
    if zipf_frequency(low, "de") >= 3.0 or low.endswith(GERMAN_ENDINGS):
        return True
    # a compound whose head is an everyday German noun: "Harnblase" (Blase), "Laborkontrolle" (Kontrolle)
    # (a head of six letters or more: shorter ones are surnames as often as nouns, "-maier", "-moser")
    return len(low) >= 9 and any(zipf_frequency(low[k:], "de") >= 3.5 for k in range(2, len(low) - 5))


class _Piece:
    def __init__(self, text: str, start: int):
        self._text, self._start = text, start

    def group(self, i: int = 0) -> str:
        return self._text

    def start(self) -> int:
        return self._start


def _runs(text: str):
    for m in RUN.finditer(text):
        words = list(regex.finditer(r"\S+", m.group(0)))
        cut = [i for i, w in enumerate(words[:-1]) if w.group(0).strip(".,") in FACILITY_KIND_WORDS]
        if not cut:
            yield m
            continue
        i = cut[-1] + 1
        yield _Piece(m.group(0)[words[i].start():], m.start() + words[i].start())


TITLE_WORDS = frozenset(N.TITLES) | {"Dr.", "Mr.", "Mrs.", "Ms.", "Prof.", "Sr", "Jr"}
# places inside a hospital, named by a number or code ("Ward 27", "Bay 4", "Room 12B", "Ward: 7B")
HOSPITAL_PLACES = frozenset("Ward Bay Bed Room Theatre Floor Level Wing Pod Suite Cubicle Side".split())
PLACE_NUMBER = regex.compile(r"[ \t]*(?::|\d|[A-Z]\d?\b)")


def _word_before(text: str, start: int, skip_codes: bool = False) -> str:
    """The word before ``start`` on the same line; with ``skip_codes``, past strength codes such as "D3", "CR", "10mg"."""
    words = regex.findall(r"[^\s(]+", text[max(0, start - 40):start].split("\n")[-1])
    while skip_codes and words and regex.fullmatch(r"(?:\p{Lu}{1,3}\d*|\d[\d.,/]*(?:mg|mcg|g|ml)?)", words[-1]):
        words.pop()
    return words[-1] if words else ""


class StatisticalNameRecognizer(RegexRecognizer):
    """Scores runs of capitalised tokens (see module docstring); emits NAME, or LOCATION after a
    locative preposition ("from Hartford", "lives on Beacon Street")."""

    def __init__(self):
        super().__init__(["NAME", "LOCATION"], "statistical_names")

    def spans(self, text):
        german = _is_german(text)
        for m in _runs(text):
            toks = [t for t in m.group(0).split() if len(t.strip(".")) > 1]
            if not toks or all(t in N.NOT_NAMES for t in toks) or any(CLINICAL_HEAD.match(t) for t in toks[1:]):
                continue
            # trim leading/trailing non-name words ("Discussed Marisol", "Ngozi Follow")
            words = list(regex.finditer(r"\S+", m.group(0)))
            def bad(w):
                t = w.group(0)
                return t in N.NOT_NAMES or t in TITLE_WORDS or L.is_clinical(t) or _odd_case(t)
            while words and bad(words[0]):
                words.pop(0)
            while words and bad(words[-1]):
                words.pop()
            if not words:
                continue
            start, end = m.start() + words[0].start(), m.start() + words[-1].end()
            toks = [w.group(0) for w in words]
            initial = bool(SENTENCE_START.search(text[max(0, start - 3):start])) or start == 0
            if regex.search(r"(?i:\bward)[ \t]+$", text[max(0, start - 8):start]):
                continue   # "Ward Enfys", "ward Kowhai": wards are named, and the name locates no person
            if len(toks) == 1 and toks[0] in HOSPITAL_PLACES and PLACE_NUMBER.match(text, end):
                continue   # "Ward 27", "Bay 4", "Ward: 7B": a place in the hospital, not Mr Ward
            if L.is_brand(_word_before(text, start, skip_codes=True)):
                continue   # "Calcichew D3 Forte", "Madopar CR": the rest of a product's name
            if any(_odd_case(t) for t in toks) or any(CLINICAL_HEAD.match(t) for t in toks[1:]):
                continue
            first, last = L.census()
            if all(_lowercase_elsewhere(text, t) and t not in first and t not in last for t in toks):
                continue
            particle = any(t.islower() for t in toks)
            # "Sanne de Vries": a name particle between two capitalised words makes the run name-shaped, so only the
            # strong clinical endings veto a word ("Vries" ends in "-ies" like "Allergies")
            scores = [0.0 if _clinical_shape(t, strong_only=not initial or particle) or (german and _german_noun(t))
                      else L.name_score(t) for t in toks if len(t.strip(".")) > 1 and t[0].isupper()]
            if not scores or max(scores) == 0:
                continue
            if EPONYM_AFTER.match(text, end) or DOSE_AFTER.match(text, end) or SPECIES_AFTER.match(text, end) or \
                    (len(toks) == 1 and TERM_AFTER.match(text, end)) or \
                    text[end:end + 2] == "'s" and \
                    EPONYM_AFTER.match(text, end + 2):
                continue
            if any(t.isupper() and len(t) > 1 for t in toks):
                continue   # ALL-CAPS words are headings/abbreviations; the header rule handles "SMITH, ANN"
            best = max(scores)
            first_names = L.census()[0]
            multi = len(scores) >= 2 and (sum(s >= 0.6 for s in scores) >= 2 or
                                          (particle and max(scores) >= 0.6 and min(scores) >= 0.2) or
                                          (toks[0] in first_names and scores[-1] >= 0.7))   # "Bill Hargreave"
            apposition = bool(APPOSITION.match(text, end))
            if multi or (best >= 0.6 and not initial) or (best >= 0.6 and len(scores) == 1 and initial and
                                                           text[end:end + 1] in (",", ")")) or \
                    (apposition and best >= 0.2) or \
                    (len(scores) == 1 and best >= 0.7 and initial and SPEECH_AFTER.match(text, end)):
                yield start, end, "NAME", 0.55 + 0.2 * multi
        for m in RELATION.finditer(text):
            if regex.search(r"[ \t]{2,}|\t", text[m.start():m.start(1)]):
                continue   # "Soo-yeon (mother)   Portal:": a column gap ends the relation
            for i in (1,):
                s, e = m.start(i), m.end(i)
                toks = m.group(i).split()
                keep = []
                first_names = L.census()[0]
                for j, t in enumerate(toks):
                    nxt = toks[j + 1] if j + 1 < len(toks) else ""
                    given_first = not keep and nxt and L.name_score(nxt) >= 0.6 and not L.is_clinical(nxt)
                    if (t in N.NOT_NAMES and t not in first_names and not given_first) or \
                            (keep and L.name_score(t) < 0.2 and not L.is_clinical(t)):
                        break   # "son, Will Petrosyan": an everyday word is a given name before a surname
                    if L.is_clinical(t) and not (keep and (keep[0] in first_names or L.name_score(keep[0]) >= 0.6)):
                        break   # "son Parkinson's"? no; "counselor Sunniva Berg": a surname after a given name
                    keep.append(t)
                if len(keep) == 1 and keep[0].isupper() and len(keep[0]) <= 6 and keep[0].capitalize() not in first_names:
                    continue   # "Baby NRIC", "husband AA", "RN, CDCES": an acronym, a genotype or a credential
                if keep and not EPONYM_AFTER.match(text, s + len(" ".join(keep))) and \
                        not (L.is_clinical(keep[-1]) and clinical_use(text, s + len(" ".join(keep)) - len(keep[-1]),
                                                                      s + len(" ".join(keep)))):
                    if L.zipf(keep[0]) < L.COMMON_WORD_ZIPF or L.name_score(keep[0]) > 0 or \
                            keep[0] in first_names or regex.fullmatch(r"\p{Lu}\.", keep[0]):
                        yield s, s + len(" ".join(keep)), "NAME", 0.75
        for m in LOWER_RELATION.finditer(text):
            t = m.group(1)
            nxt = regex.match(r"[ \t]+(\p{L}+)", text[m.end(1):])
            if nxt and CLINICAL_HEAD.match(nxt.group(1)):
                continue   # "maternal aunt ovarian cancer": an adjective of a disease, not a name
            if L.zipf(t) < 3.5 and not L.is_clinical(t.capitalize()) and not regex.search(r"(?:s|ed|ing|ly)$", t) and \
                    not _clinical_shape(t.capitalize(), strong_only=True):
                yield m.start(1), m.end(1), "NAME", 0.65
        for m in LOWER_LABELLED.finditer(text):
            words = m.group(1).split()
            if all(L.zipf(w) < 3.0 and not L.is_clinical(w.capitalize()) and
                   not _clinical_shape(w.capitalize(), strong_only=True) for w in words):
                yield m.start(1), m.end(1), "NAME", 0.65
        for m in ALIAS.finditer(text):
            toks = m.group(1).split()
            t = toks[0]
            if t not in N.NOT_NAMES and not L.is_clinical(t) and (t in L.census()[0] or L.name_score(t) >= 0.6):
                keep = toks if len(toks) > 1 and L.name_score(toks[1]) >= 0.6 and not L.is_clinical(toks[1]) else toks[:1]
                yield m.start(1), m.start(1) + len(" ".join(keep)), "NAME", 0.7
        for m in INITIAL_ANY.finditer(text):
            surname = m.group(1).split(".")[-1].strip()
            if surname in N.NOT_NAMES or L.is_clinical(surname) or _clinical_shape(surname, strong_only=True) or \
                    surname.isupper() or NOT_AFTER_INITIAL.search(text[max(0, m.start() - 12):m.start()]):
                continue
            role = bool(ROLE_BEFORE.search(text[max(0, m.start() - 10):m.start()]))
            if L.name_score(surname) >= (0.2 if role else 0.6) and not EPONYM_AFTER.match(text, m.end(1)):
                yield m.start(1), m.end(1), "NAME", 0.7
        for m in HEADER.finditer(text):
            a, b = m.group(1).split()[-1], m.group(2)   # "Jiménez Ortega, María": judge the token before the comma
            if _clinical_shape(a, strong_only=True) or CLINICAL_HEAD.match(a):
                continue   # "Endocrinology, Barwon Regional Hospital": a department line, not "Surname, Given"
            if " " in m.group(1) and (m.group(1).split()[0] in N.NOT_NAMES or L.is_clinical(m.group(1).split()[0]) or
                                      L.zipf(m.group(1).split()[0]) >= L.COMMON_WORD_ZIPF):
                continue
            common = [not t.isupper() and L.zipf(t) >= L.COMMON_WORD_ZIPF for t in (a, b)]
            if a.capitalize() in LETTER_WORDS or any(common) and L.name_score(b if common[0] else a) < 0.6:
                continue
            if b in N.CREDENTIALS:
                continue   # "Beverly Nguyen-Barrera, LCSW": a signature with a credential
            role = regex.match(r" (\p{L}{2,})", text[m.end(2):])
            if role and (role.group(1) in ROLE_TITLES or ROLE_ENDING.search(role.group(1))):
                continue   # "Deepika Rao, Clinical Pharmacist": a signature with a role, not "Surname, Given"
            if not any(t in N.NOT_NAMES or L.is_clinical(t) for t in (a, b)) and \
                    (L.name_score(a.capitalize()) >= 0.2 or L.name_score(b.capitalize()) >= 0.2):
                yield m.start(1), m.end(1), "NAME", 0.8
                yield m.start(2), m.end(), "NAME", 0.8   # with the middle initial: "WASHINGTON-BELL, Loretta J."
                # a second given name may be an everyday or eponym word when it is a given name ("Ingeborg Marie",
                # "Ann Grace"): in a surname-first header the slot after the given name is a name; in a header
                # written in capitals ("SANDHU, HARPREET KAUR") the given names are in capitals too
                caps = m.group(1).isupper() and b.isupper()
                at = m.end(2)
                for _ in range(2):
                    more = HEADER_GIVEN_MORE.match(text, at)
                    if not (more and more.group(1) not in N.NOT_NAMES and more.group(1) not in N.CREDENTIALS and
                            (more.group(1).isupper() if caps else not more.group(1).isupper())):
                        break
                    g = more.group(1).capitalize() if caps else more.group(1)
                    if not (g in L.census()[0] or (not L.is_clinical(g) and L.zipf(g) < L.COMMON_WORD_ZIPF)):
                        break
                    yield more.start(1), more.end(1), "NAME", 0.7
                    at = more.end(1)
        for m in INITIAL_SURNAME.finditer(text):
            last_tok = m.group(1).split(".")[-1].strip()
            if last_tok not in N.NOT_NAMES and not L.is_clinical(last_tok) and L.name_score(last_tok) >= 0.2:
                yield m.start(1), m.end(1), "NAME", 0.7
        for m in LETTER.finditer(text):
            toks = m.group(1).split()
            keep = []
            for t in toks:
                if t in N.NOT_NAMES or L.is_clinical(t) or t in LETTER_WORDS or not t[0].isupper():
                    break   # (the pattern is case-insensitive: "Hi, Ji-woo's pump" ends at "pump")
                keep.append(t)
            if keep and any(L.name_score(t) >= 0.2 or t in L.census()[0] for t in keep):
                yield m.start(1), m.start(1) + len(" ".join(keep)), "NAME", 0.7
        for m in LOCATIVE.finditer(text):
            toks = m.group(1).split()
            keep = []
            for t in toks:
                if t in N.NOT_NAMES or L.is_clinical(t) or _clinical_shape(t, strong_only=True) or t.isupper() or \
                        CLINICAL_HEAD.match(t) or TERM_SHAPE.match(t):
                    break   # "Standards of Care in Diabetes", "on C-reactive protein"
                keep.append(t)
            if any(EPONYM_AFTER.match(" " + t) for t in toks):
                continue   # "suffering from Sick Sinus Syndrome"
            if keep and regex.fullmatch(r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)days|Weekends?|Mornings?|Evenings?", keep[0]):
                continue   # "appointments on Thursdays"
            if keep and L.zipf(keep[0]) < 5.0 and not DOSE_AFTER.match(text, m.start(1) + len(" ".join(keep))):
                yield m.start(1), m.start(1) + len(" ".join(keep)), "LOCATION", 0.5


PARTICLE_BEFORE = regex.compile(r"(?<![\p{L}])(?:de|van|von|da|del|di|le|la|dos|du|al-) ?$", regex.I)


def propagate_names(text: str, spans: list) -> list[RecognizerResult]:
    """Every other occurrence of a name token already found, in any case ("OKAFOR", "jamal"); a token
    that is also an everyday word ("Will", "Grace") is propagated only in its capitalised form."""
    tokens = set()
    spans = list(spans) + nicknames(text, spans)
    for s in spans:
        if s.entity in ("NAME", "NICK"):
            found = regex.findall(r"\p{L}[\p{L}'’\-]*\p{L}", text[s.start:s.end])
            for i, t in enumerate(found):
                t = t.strip("'’")
                # an everyday word kept as a given name before a surname ("Will Petrosyan") still counts
                if len(t) > 1 and (t not in N.NOT_NAMES or (i == 0 and len(found) > 1 and t[0].isupper())) and \
                        t.lower() not in {"de", "van", "der", "von", "del", "da", "di", "la", "le", "bin", "al", "dos"}:
                    tokens.add(t)
    out = []
    for t in sorted(tokens, key=len, reverse=True):
        if _clinical_shape(t, strong_only=True):
            continue   # "Eastfield Neurology" taken for a name must not take every "Neurology" with it
        common = L.zipf(t) >= L.COMMON_WORD_ZIPF or t in N.NOT_NAMES or L.is_clinical(t)
        rx = regex.compile(rf"(?<![\p{{L}}\-]){regex.escape(t)}(?![\p{{L}}])", 0 if common else regex.I)
        for m in rx.finditer(text):
            if common and not m.group(0)[0].isupper():
                continue
            if clinical_use(text, m.start(), m.end()):
                continue   # "Dr. Wells" found; "Wells 2" and "Wells score" stay
            p = PARTICLE_BEFORE.search(text[max(0, m.start() - 5):m.start()])
            out.append(RecognizerResult("NAME", m.start() - (len(p.group(0)) if p else 0), m.end(), 0.6))
    nicks = [RecognizerResult("NAME", s.start, s.end, 0.7) for s in spans if isinstance(s, _Span) and s.entity == "NICK"]
    return out + nicks + _surname_after(text, spans + [_Span(r.start, r.end) for r in out])


def nicknames(text: str, spans: list) -> list:
    """'Renee ("Nay-Nay")', 'Jesús ("Chuy")': a quoted word right after a found name is what the person is called."""
    out = []
    for s in spans:
        if s.entity != "NAME":
            continue
        m = NICKNAME.match(text, s.end)
        if m and m.group(1) not in N.NOT_NAMES and not L.is_clinical(m.group(1)):
            out.append(_Span(m.start(1), m.end(1), "NICK"))
    return out


class _Span:
    def __init__(self, start, end, entity="NAME"):
        self.start, self.end, self.entity = start, end, entity


NEXT_CAP = regex.compile(rf"[ \t]({TOKEN})(?![\p{{L}}'’\-])")   # one space: a column gap is not a surname's


def _surname_after(text: str, spans: list) -> list[RecognizerResult]:
    """A capitalised surname-like word right after a found given name is the same person's surname
    ("daughter Hyun-joo" found, later "Hyun-joo Park"): a census surname or a word that is not everyday
    English, unless it starts a clinical term, a heading word or a facility."""
    out = []
    first, last = L.census()
    for s in spans:
        if s.entity != "NAME":
            continue
        m = NEXT_CAP.match(text, s.end)
        if not m:
            continue
        t = m.group(1)
        if t in N.NOT_NAMES or t in TITLE_WORDS or _odd_case(t) or t.isupper() or L.is_clinical(t) or \
                clinical_use(text, m.start(1), m.end(1)) or DOSE_AFTER.match(text, m.end(1)):
            continue
        if regex.match(r"\s+(?:Hospital|Clinic|Centre|Center|Medical|Health|Street|St\b|Road|Avenue|Lane|Drive|Network|"
                       r"Services?|Group|Program|Programme|Unit|Institute|University|Association|Society|Foundation|"
                       r"Trust|Board|Study|Trial|Registry|Scale|Score|Index)\b", text[m.end(1):]):
            continue
        if t in last or L.name_score(t) >= 0.6:
            out.append(RecognizerResult("NAME", m.start(1), m.end(1), 0.55))
    return out
