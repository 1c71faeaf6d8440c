"""The offline statistical evidence behind name detection without cues.

Two frequency resources, both installed PyPI data (nothing is downloaded at run time):

* US Census 1990 name lists (package ``names``): 5,494 given names and 88,799 surnames, each with
  its share of the population, so "Smith" (1.0 %) weighs more than "Achterberg" (absent).
* English word frequency (package ``wordfreq``, Zipf scale: 6 = once per thousand words,
  3 = once per million). It tells a name that is also an everyday word ("Will", "May", "Grant",
  "Rose", "Bill": Zipf 4.6-6.5) from one that is not ("Ngozi" 2.3, "Achterberg" 1.2).

A capitalised token scores high when it is a known name and not a common word, or when it is not
an English word at all (names from other languages are rare in English text); eponyms and drug
or device brands that look like names are listed in ``CLINICAL_CAPITALISED`` and never score."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

COMMON_WORD_ZIPF = 4.6   # at or above: an everyday English word, a name only with a cue
RARE_WORD_ZIPF = 3.0     # below: hardly an English word; capitalised mid-sentence it is likely a name

# Capitalised clinical words that are people's names or look like them; they must survive.
CLINICAL_CAPITALISED = frozenset("""
Parkinson Parkinson's Parkinsonism Crohn Crohn's Graves Graves' Hashimoto Hashimoto's Cushing Cushing's Addison
Addison's Alzheimer Alzheimer's Huntington Huntington's Wilson Wilson's Bell Bell's Hodgkin Hodgkin's Kaposi Raynaud
Raynaud's Wells Murphy Murphy's Kernig Brudzinski Babinski Romberg Phalen Phalen's Tinel Tinel's Lachman McMurray
Trendelenburg Homan Homans Homan's Glasgow Apgar Barthel Morse Braden Killip Fisher Hunt Hess Garden Simpson Simpson's
Fitzpatrick Gleason Breslow Clark Dukes Ann Arbor Child Pugh Child-Pugh Ranson Glasgow-Blatchford Blatchford Rockall
Centor McIsaac Epworth Mallampati Cormack Lehane Whipple Nissen Roux Billroth Hartmann Hartmann's Foley Hickman
Swan Ganz Swan-Ganz Holter Doppler Seldinger Valsalva Heimlich Kussmaul Cheyne Stokes Korotkoff Osler Janeway
Roth Virchow Virchow's Horner Horner's Bell Guillain Barré Barre Sjögren Sjogren Sjögren's Behçet Behcet Kawasaki
Takayasu Wegener Churg Strauss Reiter Still Still's Paget Paget's Dupuytren Colles Smith's Monteggia Galeazzi Boxer
Baker Baker's Meckel Meckel's Hirschsprung Zenker Barrett Barrett's Mallory Weiss Boerhaave Budd Chiari Gilbert
Gilbert's Dubin Wernicke Korsakoff Creutzfeldt Jakob Bence Jones Reed Sternberg Auer Howell Jolly Heinz Burkitt
Ewing Ewing's Wilms Kaposi's Merkel Hurthle Brown-Séquard Brown Sequard Tourette Tourette's Asperger Down Down's
Turner Turner's Klinefelter Marfan Marfan's Ehlers Danlos Noonan Prader Willi Angelman DiGeorge Tay Sachs Gaucher
Fabry Pompe Hurler Hunter Duchenne Becker Charcot Marie Tooth Lou Gehrig Friedreich Bell's Ramsay Lyme Rocky
Graves's Hashimoto's Burch Wartofsky Burch-Wartofsky Fontaine Rutherford Caprini Padua Khorana Geneva Wells'
Ottawa Canadian NEXUS Ranson's Alvarado Bishop Mini Montreal Beck Hamilton Zung Folstein Katz Lawton Tinetti
Berg Norton Waterlow Rankin Aldrete Richmond Ramsay's Boston Bristol Manchester Gail Tyrer Cuzick Duke Jones
Cockcroft Gault Friedewald Kt Murray Mobitz Wenckebach Wolff White Brugada Prinzmetal Dressler Dressler's Kussmaul's
Levine Austin Flint Graham Steell Carey Coombs Coombs' Gram Ziehl Neelsen Giemsa Wright Papanicolaou Pap Schilling
Medtronic Boston Abbott Jevity Ensure Symbicort Ventolin Seretide Advair Spiriva Lantus Humalog Novorapid Eliquis
Xarelto Keytruda Humira Gastrografin Dexa DaVita Tylenol Advil Motrin Lasix Coumadin Plavix Lipitor Zofran EpiPen
Hartmann Mallory-Weiss Stevens Johnson Stevens-Johnson Guillain-Barré Mobitz Lugol Lugol's Betadine Vaseline
Simpson's Fick Frank Starling Bohr Haldane Henderson Hasselbalch Ohm Starling's Laplace Poiseuille Kerley
Gerota Glisson Douglas Morison Calot Hesselbach Scarpa Poupart Cooper Treitz Vater Oddi Wirsung Santorini Bartholin
Skene Cowper Graafian Fallopian Eustachian Broca Wernicke's Purkinje Langerhans Kupffer Leydig Sertoli Schwann Ranvier
English Spanish Vietnamese Mandarin Cantonese Arabic Portuguese Russian Polish French German Italian Somali Farsi
Hindi Urdu Tagalog Korean Japanese Haitian Creole Swahili Yoruba Igbo Twi Amharic Punjabi Bengali Greek Hebrew
MacNew Christian Muslim Jewish Catholic Hindu Buddhist Jehovah Jehovah's Witness Medicare Medicaid
""".split())


@lru_cache(maxsize=1)
def census() -> tuple[dict[str, float], dict[str, float]]:
    """(given name -> % of people, surname -> % of people), keys capitalised."""
    folder = resources.files("names")

    def read(*files):
        out: dict[str, float] = {}
        for f in files:
            for line in (folder / f).read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    name = parts[0].capitalize()
                    out[name] = max(out.get(name, 0.0), float(parts[1]))
        return out

    return read("dist.male.first", "dist.female.first"), read("dist.all.last")


@lru_cache(maxsize=200_000)
def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en")


def is_clinical(token: str) -> bool:
    t = token.rstrip(".,;:")
    return t in CLINICAL_CAPITALISED or t.rstrip("'s").rstrip("'") in CLINICAL_CAPITALISED


@lru_cache(maxsize=200_000)
def name_score(token: str) -> float:
    """How likely a capitalised token, seen without any cue, is part of a person's name (0..1)."""
    t = token.strip(".,;:()")
    if len(t) < 2 or is_clinical(t) or not t[0].isupper():
        return 0.0
    parts = [p for p in t.replace("'", "-").split("-") if p]   # "Mbeki-Turner", "O'Sullivan"
    if len(parts) > 1:
        return max(name_score(p.capitalize()) for p in parts if len(p) > 1) if any(len(p) > 1 for p in parts) else 0.0
    first, last = census()
    z = zipf(t)
    known = max(first.get(t, 0.0), last.get(t, 0.0))
    if z >= COMMON_WORD_ZIPF:
        return 0.1 if known else 0.0      # "Will", "Grant", "Rose": a word unless a cue says otherwise
    if known:
        return 0.85 if z < 3.5 else 0.6
    if z < RARE_WORD_ZIPF:
        return 0.7                      # not an English word: foreign names, rare surnames
    return 0.2
