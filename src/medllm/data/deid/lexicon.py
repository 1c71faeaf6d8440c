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


# Staging systems, scores and classifications named after people or places ("Deauville 2", "Lugano",
# "Modic type 1", "Bosniak IIF"); common surnames (Weber, Harris, Tanner) are left out on purpose: a
# name cue still finds them, and clinical_use() keeps "Weber B" style uses off propagation.
SCORING_NAMES = frozenset("""
Deauville Lugano Modic Bosniak Hinchey Gustilo Schatzker Fazekas Spetzler Hoehn Yahr Truelove Siewert Borrmann
Clavien Dindo Sokal Binet Durie Masaoka Ishak Metavir METAVIR Kellgren Outerbridge Pfirrmann Hounsfield Lown
Forrester DeBakey Wexner Nottingham Elston Balthazar Atlanta Lille Maddrey Barcelona Okuda Oxford
Bethesda Tokyo Vienna Kyoto Rotterdam Duke's Gartland Neer Frankel Tegner Lysholm Lequesne
Oswestry Barthel's Karnofsky Lansky ECOG Glasgow's Blatchford's Ranson Banff Leeds
Seattle Prague Montreal Los Angeles Savary Zargar Rutgeerts Truelove-Witts Harvey-Bradshaw
Geneva Caprini Wagner's Pedis Lauge-Hansen Weber's Garden's Pauwels Vancouver Paprosky 
Dorr Kocher Kocher's Kanavel Finkelstein Finkelstein's Allen's Spurling Spurling's Lhermitte Hoffmann Hoffmann's
Chvostek Trousseau Trousseau's Turner's Rovsing Rovsing's Psoas Obturator Blumberg McBurney McBurney's
Westermark Kerley Mallampati's Tanner's Quincke Quincke's Mees Muehrcke Terry's
 Dupuytren's Heberden Heberden's Bouchard Bouchard's Osgood Schlatter Sever Perthes Legg Calvé Scheuermann
Kienböck Kienbock Preiser Freiberg Köhler Kohler Sinding Hagl Bankart Hill-Sachs Sachs Segond Maisonneuve
Lisfranc Chopart Jones' Chauffeur Smith-Petersen Kirschner Steinmann
Ilizarov Thomas' Lugol's Dakin Dakin's Ringer Ringer's Hartmann's Krebs Warburg Gomori Jones's Masson
""".split())

# Brand names of common medicines (US, UK, EU, AU): capitalised, rare as English words, and so
# name-like to the frequency lexicon; written here from general pharmacology knowledge.
BRAND_DRUGS = frozenset("""
Jardiance Farxiga Forxiga Invokana Steglatro Januvia Janumet Trajenta Tradjenta Galvus Onglyza Trulicity Ozempic
Rybelsus Wegovy Victoza Saxenda Mounjaro Zepbound Byetta Bydureon Glucophage Amaryl Diamicron Actos Lantus Levemir
Tresiba Toujeo Basaglar Humalog Novolog Novorapid NovoRapid Fiasp Apidra Humulin Novolin Mixtard Entresto Brilinta
Brilique Pradaxa Savaysa Lixiana Eliquis Xarelto Coumadin Marevan Warfarin Lovenox Clexane Fragmin Innohep Plavix
Effient Aspirin Disprin Synthroid Eltroxin Levoxyl Euthyrox Tirosint Norvasc Istin Zestril Prinivil Tritace Altace
Cozaar Diovan Micardis Atacand Benicar Avapro Toprol Lopressor Betaloc Coreg Cardicor Concor Bisoprolol Tenormin
Inderal Aldactone Inspra Crestor Zocor Pravachol Lipitor Livalo Zetia Ezetrol Repatha Praluent Leqvio Tricor
Lasix Bumex Burinex Demadex Microzide Zaroxolyn Metolazone Lanoxin Cordarone Pacerone Multaq Tikosyn Rythmol
Tambocor Nitrostat GTN Imdur Ranexa Ranolazine Cardizem Tiazac Calan Procardia Adalat Corlanor Procoralan
Sinemet Madopar Stalevo Rytary Azilect Mirapex Requip Neupro Xadago Keppra Lamictal Depakote Epilim Tegretol
Trileptal Dilantin Epanutin Neurontin Lyrica Topamax Vimpat Briviact Fycompa Zonegran Zoloft Lustral Prozac
Lexapro Cipralex Celexa Cipramil Paxil Seroxat Effexor Cymbalta Pristiq Wellbutrin Zyban Remeron Zispin Trintellix
Seroquel Zyprexa Risperdal Abilify Invega Latuda Clozaril Haldol Ativan Xanax Valium Klonopin Rivotril Ambien
Stilnoct Zimovane Sonata Lunesta Oxycontin Oxynorm Percocet Vicodin Norco Dilaudid Ultram Zydol Tramacet Suboxone
Subutex Narcan Nyxoid Oramorph Zomorph Sevredol MST Durogesic Butrans Fentora Protonix Nexium Prilosec Losec Zoton
Pepcid Zantac Reglan Maxolon Stemetil Buscopan Colace Senokot Miralax Movicol Laxido Dulcolax Lactulose Duphalac
Fybogel Imodium Lomotil Gaviscon Rennie Tums Mylanta Asacol Pentasa Salofalk Octasa Lialda Mezavant Entocort
Budenofalk Flagyl Cipro Ciproxin Levaquin Tavanic Avelox Augmentin Keflex Zinnat Zithromax Klaricid Biaxin
Bactrim Septrin Macrobid Macrodantin Vancocin Zosyn Tazocin Rocephin Meronem Merrem Invanz Zyvox Cubicin Tygacil
Tamiflu Relenza Valtrex Zovirax Paxlovid Veklury Diflucan Sporanox Vfend Noxafil Cancidas Ambisome Lamisil
Medrol Decadron Solu-Medrol Solu-Cortef Deltacortril Flovent Flixotide Pulmicort Qvar Clenil Fostair Seretide
Symbicort Advair Breo Relvar Trelegy Trimbow Anoro Incruse Spiriva Atrovent Combivent DuoNeb Ventolin ProAir
Proventil Xopenex Bricanyl Singulair Xolair Dupixent Nucala Fasenra Tezspire Enbrel Remicade Inflectra Humira
Amgevita Stelara Entyvio Otezla Rinvoq Xeljanz Olumiant Cosentyx Taltz Skyrizi Tremfya Kevzara Actemra RoActemra
Orencia Benlysta Ocrevus Kesimpta Tecfidera Vumerity Gilenya Mavenclad Tysabri Copaxone Avonex Rebif Aubagio
Keytruda Opdivo Yervoy Tecentriq Imfinzi Bavencio Libtayo Herceptin Perjeta Kadcyla Enhertu Avastin Erbitux
Vectibix Rituxan MabThera Gazyva Revlimid Pomalyst Thalomid Velcade Kyprolis Darzalex Imbruvica Calquence
Brukinsa Venclexta Venclyxto Gleevec Glivec Sprycel Tasigna Tagrisso Tarceva Iressa Alecensa Xalkori Lorbrena
Ibrance Kisqali Verzenio Lynparza Zejula Xtandi Zytiga Erleada Nubeqa Lupron Prostap Zoladex Firmagon Faslodex
Arimidex Femara Aromasin Nolvadex Xeloda Temodal Temodar Xgeva Prolia Fosamax Actonel Bonviva Boniva Aclasta
Reclast Evista Forteo Evenity Aricept Namenda Ebixa Exelon Reminyl Razadyne Leqembi Flomax Flomaxtra Proscar
Avodart Combodart Detrol Detrusitol Vesicare Myrbetriq Betmiga Toviaz Viagra Cialis Levitra Premarin Estrace
Estrogel Evorel Utrogestan Prometrium Mirena Kyleena Nexplanon Implanon Depo-Provera Sayana Microgynon
Cerazette Plaquenil Arava Imuran CellCept Myfortic Prograf Advagraf Envarsus Neoral Sandimmune Rapamune Certican
Zyloprim Zyloric Uloric Adenuric Colcrys Epogen Procrit Aranesp Eprex Mircera Neupogen Neulasta Venofer Ferinject
Monofer Feraheme Renvela Renagel PhosLo Fosrenol Velphoro Sensipar Mimpara Adcal Calcichew Fultium Ensure
Calpol Nurofen Panadol Tylenol Advil Motrin Aleve Naprosyn Voltaren Voltarol Celebrex Arcoxia Mobic Indocin
Zofran Kytril Emend Akynzeo Sandostatin Somatuline Creon Pancrease Kayexalate Lokelma Veltassa Resonium Sando-K
Slow-K Klor-Con Kay-Cee-L Epipen EpiPen Glucagen Hypostop Glucogel Lucentis Eylea Beovu Vabysmo Xalatan Lumigan
Travatan Cosopt Azopt Alphagan Timoptic Chantix Champix Nicorette NiQuitin Antabuse Campral Revia Vivitrol Strattera
Ritalin Concerta Adderall Vyvanse Elvanse Intuniv Medikinet Equasym Spravato Nuplazid Austedo Ingrezza Xenazine
Botox Dysport Xeomin Aimovig Ajovy Emgality Vyepti Nurtec Ubrelvy Imitrex Imigran Maxalt Zomig Relpax
Descovy Truvada Biktarvy Genvoya Triumeq Dovato Juluca Odefsey Stribild Atripla Eviplera Symtuza Prezista Isentress
Tivicay Cabenuva Vocabria Epclusa Harvoni Mavyret Maviret Sovaldi Zepatier Vemlidy Viread Baraclude Hepsera
Imeron Omnipaque Visipaque Ultravist Optiray Isovue Iomeron Gadovist Dotarem Magnevist ProHance Clariscan Primovist
Endone OxyNorm OxyContin Oxycontin Targin Palexia Tramal Panadeine Panadol Panamax Nurofen Ordine Kapanol Durogesic
Norspan Sevredol Endep Serepax Temaze Stilnox Movicol Coloxyl Senokot Somac Nexium Losec Lyrica Neurontin Tegretol
Epilim Keppra Webster-pak Webster-Pak Dosette Dosett Blister-pak Medipak
""".split())

# Genus names of organisms seen in clinical notes: capitalised, Latin, rare as English words and so name-like
# to the frequency lexicon ("septic shock from a Klebsiella urinary source"). Given names that are also genera
# (Candida) stay findable by a title or label cue; the statistical layer never scores them.
ORGANISMS = frozenset("""
Klebsiella Pseudomonas Enterococcus Enterococci Candida Listeria Escherichia Staphylococcus Staphylococci
Streptococcus Streptococci Proteus Serratia Enterobacter Citrobacter Acinetobacter Haemophilus Hemophilus Neisseria
Legionella Mycoplasma Chlamydia Chlamydophila Clostridium Clostridioides Salmonella Shigella Campylobacter
Helicobacter Bacteroides Aspergillus Cryptococcus Pneumocystis Mycobacterium Nocardia Actinomyces Bordetella
Brucella Borrelia Treponema Leptospira Rickettsia Coxiella Bartonella Yersinia Vibrio Morganella Providencia
Stenotrophomonas Burkholderia Moraxella Corynebacterium Cutibacterium Propionibacterium Lactobacillus Bacillus
Fusobacterium Prevotella Peptostreptococcus Veillonella Eikenella Kingella Cardiobacterium Aggregatibacter
Capnocytophaga Pasteurella Francisella Histoplasma Blastomyces Coccidioides Paracoccidioides Mucor Rhizopus
Trichophyton Microsporum Malassezia Sporothrix Giardia Entamoeba Cryptosporidium Plasmodium Toxoplasma
Trichomonas Schistosoma Strongyloides Enterobius Ascaris Taenia Echinococcus Sarcoptes Gardnerella Ureaplasma
Achromobacter Elizabethkingia Raoultella Hafnia Aeromonas Pantoea Streptomyces Gemella Granulicatella Abiotrophia
Leuconostoc Pediococcus Micrococcus Rothia Tropheryma Kocuria Leishmania Trypanosoma Babesia Anaplasma Ehrlichia
Cyclospora Naegleria Acanthamoeba Toxocara Trichinella Wuchereria Onchocerca Loa Pediculus Cimex Norovirus
Rotavirus Adenovirus Enterovirus Rhinovirus Coronavirus Cytomegalovirus Parvovirus Metapneumovirus Lyssavirus
""".split())

# More named scales and tools that are rare surnames; common surnames, given names ("Abbey") and towns stay off:
# EPONYM's "<Name> pain scale" context rule keeps those (see recognizers.NameRecognizer.EPONYM).
MORE_SCALES = frozenset("""
Waterlow Waterlow's Glamorgan Borg Rockwood Riker Snellen Ishihara Likert Kurtzke Zubrod Åsberg Asberg Wong-Baker
PAINAD Mini-Cog MoCA
Ortolani Chvostek Trousseau Rovsing Courvoisier Virchow Quincke Beevor Froment Adson Apley Thessaly Lasegue Lasègue
Gaenslen Finkelstein Spurling Capgras Fregoli Cotard Ekbom Korsakoff Wernicke Munchausen Munchausen's Ganser Zuspan
""".split())

# National chains, insurers and suppliers: the name alone is in every town and locates nobody; a branch
# ("DaVita Eastgate", "Walgreens on Delmar Blvd") is caught by the facility and street rules.
NATIONAL_ORGS = frozenset("""
Quest LabCorp Labcorp Sonic Synlab Eurofins Lincare Apria Rotech AdaptHealth Inogen ResMed Walgreens CVS
Boots Lloyds Superdrug Rite Walmart Costco Kroger Safeway Publix Target Amazon Express Scripts Optum OptumRx Caremark
Aetna Cigna Humana Anthem Elevance Centene UnitedHealthcare UnitedHealth Bupa AXA Allianz Medibank
HCF Nib Tricare TRICARE BlueCross BlueShield Highmark Ambetter Fresenius DaVita Medtronic Abbott Dexcom
FreeStyle Libre Omnipod Tandem Stryker Smith+Nephew Hologic Siemens Pfizer Moderna Novartis
AstraZeneca GSK Sanofi Merck Novo Nordisk Teva Mylan Sandoz Uber Lyft Medicare Medicaid Medi-Cal
""".split())


# Devices and products named like people or in no dictionary: sutures ("0 Vicryl", "4-0 Monocryl"), dressings, drains,
# oxygen and ventilation devices ("Airvo"), analgesia devices, record systems ("Kardex"), formulation words after a
# brand ("Forte", "Retard"), and car makes (a vehicle's make is no identifier; its plate is)
DEVICES_AND_PRODUCTS = frozenset("""
Vicryl Monocryl Prolene PDS Ethilon Nurolon Dexon Maxon Biosyn Caprosyn Polysorb Ethibond Mersilene Novafil Surgilene
Stratafix V-Loc Dermabond Histoacryl Steri-Strips Steri-Strip Tegaderm Opsite OpSite Mepore Mepilex Allevyn Aquacel
Kaltostat Sorbact Inadine Jelonet Duoderm DuoDERM Comfeel Granuflex Mepitel Urgotul Cavilon Medihoney Actisorb Iodosorb
Redivac Pleurx PleurX Portex Jackson-Pratt Malecot
Airvo Optiflow Vapotherm Venturi BiPAP Resmed Fisher-Paykel
Penthrox Entonox Kardex Cerner Meditech EMIS SystmOne Medtech
Corflo Flexiflo Freka Groshong Portacath Port-a-Cath Vascath Tenckhoff Permcath Broviac Mediport Picc Flowtron Rollator
Forte Retard Continus Chrono
Honda Toyota Nissan Mazda Subaru Hyundai Kia Chevrolet Chevy Volkswagen Peugeot Renault Citroen Citroën Skoda Volvo
Tesla Civic Corolla Camry Prius
""".split())

# Laboratory abbreviations as written in results ("Hct 41.6", "Plt 58", "rising Hct"): short, rare as English
# words, and so name-like to the frequency lexicon
LAB_ABBREVIATIONS = frozenset("""
Hb Hgb Hct Plt Plts Wcc Wbc Rbc Mcv Mch Mchc Rdw Mpv Neut Neuts Lymph Lymphs Mono Eos Baso Retic Crp Esr Inr Aptt Ptt
Fib Alt Ast Alp Ggt Ldh Ck Trop Bnp Tsh Egfr Ur Cr Creat Alb Bili Glu Lac Lact Bicarb Phos Ferr Tsat Vbg Abg Hba1c
""".split())


def is_brand(token: str) -> bool:
    t = token.strip(".,;:()")
    return t in BRAND_DRUGS or t.capitalize() in BRAND_DRUGS


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


NEVER_NAMES = CLINICAL_CAPITALISED | SCORING_NAMES | BRAND_DRUGS | NATIONAL_ORGS | ORGANISMS | MORE_SCALES | \
    DEVICES_AND_PRODUCTS | LAB_ABBREVIATIONS


def is_clinical(token: str) -> bool:
    """A capitalised word that is clinical vocabulary (eponym, score, brand) or a national organisation."""
    t = token.rstrip(".,;:")
    return t in NEVER_NAMES or t.rstrip("'s").rstrip("'") in NEVER_NAMES or t.rstrip("’s") in NEVER_NAMES


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
