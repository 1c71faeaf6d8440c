"""Synthetic PHI corpus: clinical-style notes with every planted identifier's exact span.
Wordings and name pools differ on purpose from the recognizers' cue lists and gazetteer
(about half the names are outside it), so evaluation measures generalisation, not a lookup."""
from __future__ import annotations

import random
import string

from medllm.data.deid import names as N

# names the recognizers' gazetteer does not contain
OTHER_FIRST = ["Okonkwo", "Thandiwe", "Bjorn", "Siobhan", "Dmitri", "Anneliese", "Kofi", "Ingrid", "Mateus", "Yusuf",
               "Rosalind", "Tobias", "Niamh", "Anders", "Esperanza", "Caspian", "Leocadia", "Rasmus", "Imani", "Zoltan"]
OTHER_LAST = ["Abernathy", "Takahashi", "Dimitriou", "Okonjo", "Van der Berg", "Lindqvist", "Oyelaran", "Castellanos",
              "Fitzgerald", "Haddad", "Kowalczyk", "Nakamura", "Rosenthal", "Szabo", "Whitfield", "Achterberg",
              "Ballantyne", "Crisostomo", "Delacroix", "Eriksen"]
STREETS = ["Willow Creek Road", "Harbor View Drive", "Jefferson Avenue", "Old Mill Lane", "Sycamore Street",
           "Lakeshore Boulevard", "Chestnut Court", "Ridgeview Way"]
CITIES = [("Bakersfield", "CA"), ("Dayton", "OH"), ("Tacoma", "WA"), ("Savannah", "GA"), ("Boise", "ID"),
          ("Fort Wayne", "IN"), ("Reno", "NV"), ("Lancaster", "PA")]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
FINDINGS = ["Vitals stable.", "Lungs clear to auscultation.", "No acute distress.", "Abdomen soft, non-tender.",
            "Plan: continue current medications.", "Labs reviewed and unremarkable.", "Wound healing well.",
            "Follow up in two weeks.", "Tolerating diet.", "Pain controlled on current regimen."]

# sentence templates: {TYPE} slots are planted identifiers; several wordings per type
TEMPLATES = [
    "Patient: {NAME}", "Pt name - {NAME}.", "{NAME} is a 54 year old seen today for follow-up.",
    "Seen together with her daughter {FIRST}.", "Discussed the plan with Dr. {LAST} from cardiology.",
    "Mrs. {LAST} reports improved sleep.", "Referred by {NAME} for evaluation.", "Her husband, {NAME}, was present.",
    "{NAME}, MD", "Electronically signed by {NAME}, RN.", "Case reviewed with Prof. {LAST}.",
    "Emergency contact: {NAME} ({PHONE}).", "Mr. {NAME} arrived by ambulance.",
    "Admitted on {DATE}.", "Date of birth: {DATE}.", "Surgery scheduled for {DATE}.", "Last seen {DATE}.",
    "Symptoms began around {DATE}.", "Discharged {DATE} in good condition.",
    "The patient is {AGE} years old.", "{AGE} y/o female with dementia.", "Age: {AGE}.",
    "Call back number {PHONE}.", "Home phone: {PHONE}.", "Results faxed to {FAX}.", "Fax: {FAX}",
    "Contact via {EMAIL} for scheduling.", "Email: {EMAIL}",
    "SSN {SSN} on file.", "Social security no. {SSN}.",
    "MRN: {MRN}", "Medical record number {MRN}.", "Chart # {MRN} updated.",
    "Insurance member ID {HEALTH_PLAN}.", "Health plan number: {HEALTH_PLAN}.", "Policy # {HEALTH_PLAN} verified.",
    "Account number {ACCOUNT} billed.", "Billing acct # {ACCOUNT}.",
    "Driver license number {LICENSE} copied.", "Prescriber DEA {LICENSE}.", "Licence no. {LICENSE}.",
    "Vehicle VIN {VEHICLE} involved in the collision.", "License plate {PLATE} recorded by police.",
    "Pacemaker serial number {DEVICE}.", "Insulin pump device ID {DEVICE}.", "Implant S/N {DEVICE}.",
    "Patient portal: {URL}", "Records uploaded at {URL} for review.",
    "Login from IP {IP} flagged.", "Telehealth session from {IP}.",
    "Lives at {STREET}, {CITY}, {STATE} {ZIP}.", "Moved to {CITY} last year.", "Home address {STREET}.",
    "Specimen accession number {ID} sent to pathology.", "Study ID {ID} enrolment confirmed.",
]


class _Gen:
    def __init__(self, rng: random.Random):
        self.r = rng

    def first(self) -> str:
        return self.r.choice(sorted(N.FIRST_NAMES)) if self.r.random() < 0.5 else self.r.choice(OTHER_FIRST)

    def last(self) -> str:
        return self.r.choice(sorted(N.LAST_NAMES)) if self.r.random() < 0.5 else self.r.choice(OTHER_LAST)

    def name(self) -> str:
        return f"{self.first()} {self.last()}"

    def date(self) -> str:
        r = self.r
        y, m, d = r.randint(1940, 2025), r.randint(1, 12), r.randint(1, 28)
        fmt = r.randrange(7)
        return [f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{y}-{m:02d}-{d:02d}", f"{MONTHS[m - 1]} {d}, {y}",
                f"{d} {MONTHS[m - 1]} {y}", f"{MONTHS[m - 1][:3]} {d}, {y}", f"{MONTHS[m - 1]} {y}"][fmt]

    def phone(self) -> str:
        a, b, c = self.r.randint(201, 989), self.r.randint(201, 989), self.r.randint(0, 9999)
        return [f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}", f"+1 {a} {b} {c:04d}"][self.r.randrange(4)]

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def code(self, letters: int, digits: int) -> str:
        return "".join(self.r.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(letters)) + self.digits(digits)

    def fill(self, slot: str) -> tuple[str, str]:
        r = self.r
        value = {
            "NAME": self.name, "FIRST": self.first, "LAST": self.last, "DATE": self.date, "PHONE": self.phone,
            "FAX": self.phone, "AGE": lambda: str(r.randint(90, 104)),
            "EMAIL": lambda: f"{self.first().lower()}.{self.last().lower().replace(' ', '')}{r.randint(1, 99)}@"
                             f"{r.choice(['gmail.com', 'yahoo.com', 'outlook.com', 'mail.org'])}",
            "SSN": lambda: f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
            "MRN": lambda: r.choice([self.digits(8), self.code(2, 7), self.digits(6)]),
            "HEALTH_PLAN": lambda: self.code(3, 9), "ACCOUNT": lambda: self.digits(10),
            "LICENSE": lambda: self.code(1, 7) if r.random() < .5 else self.code(2, 7),
            "VEHICLE": lambda: "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(14)) + self.digits(3),
            "PLATE": lambda: f"{self.code(3, 0)}{self.digits(4)}",
            "DEVICE": lambda: f"{self.code(2, 0)}{self.digits(6)}{self.code(1, 0)}",
            "URL": lambda: f"https://{r.choice(['mychart', 'portal', 'records'])}.{self.last().lower().replace(' ', '')}"
                           f"health.com/p/{self.digits(5)}",
            "IP": lambda: f"{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
            "STREET": lambda: f"{r.randint(1, 9999)} {r.choice(STREETS)}", "ZIP": lambda: self.digits(5),
            "ID": lambda: self.code(2, 6),
        }[slot]()
        entity = {"FIRST": "NAME", "LAST": "NAME", "PLATE": "VEHICLE", "STREET": "LOCATION", "CITY": "LOCATION"}.get(slot, slot)
        return value, entity


def synth_note(rng: random.Random, n_sentences: int = 8) -> dict:
    """One note: {"text", "spans": [{"start", "end", "entity", "text"}]}."""
    gen = _Gen(rng)
    text, spans = "", []
    chosen = rng.sample(TEMPLATES, n_sentences)
    for i, tpl in enumerate(chosen):
        city, state = rng.choice(CITIES)
        parts = tpl.replace("{", "\x00{").replace("}", "}\x00").split("\x00")
        for part in parts:
            if part.startswith("{") and part.endswith("}"):
                slot = part[1:-1]
                if slot == "CITY":
                    value, entity = city, "LOCATION"
                elif slot == "STATE":
                    text += state
                    continue
                else:
                    value, entity = gen.fill(slot)
                spans.append({"start": len(text), "end": len(text) + len(value), "entity": entity, "text": value})
                text += value
            else:
                text += part
        text += " " + rng.choice(FINDINGS) + ("\n" if i % 3 == 2 else " ")
    return {"text": text.strip(), "spans": spans}


def synth_corpus(n: int = 500, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [dict(synth_note(rng, rng.randint(6, 10)), id=f"note-{i:05d}") for i in range(n)]
