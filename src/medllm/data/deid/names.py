"""Our name gazetteer (common US given names and surnames) and clinical name cues.
The synthetic PHI generator draws partly from *other* name pools, so name recall measures
the context cues (titles, labels, signatures, propagation) and not just this list."""
FIRST_NAMES = frozenset("""
James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Richard Susan Joseph
Jessica Thomas Sarah Charles Karen Christopher Nancy Daniel Lisa Matthew Betty Anthony Margaret Mark Sandra
Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth Dorothy Kevin Carol Brian Amanda
George Melissa Edward Deborah Ronald Stephanie Timothy Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob
Kathleen Gary Amy Nicholas Shirley Eric Angela Jonathan Helen Stephen Anna Larry Brenda Justin Pamela Scott
Nicole Brandon Emma Benjamin Samantha Samuel Katherine Gregory Christine Frank Debra Alexander Rachel Raymond
Catherine Patrick Carolyn Jack Janet Dennis Ruth Jerry Maria Tyler Heather Aaron Diane Jose Virginia Adam Julie
Henry Joyce Nathan Victoria Douglas Olivia Zachary Kelly Peter Christina Kyle Lauren Walter Joan Ethan Evelyn
Jeremy Judith Harold Megan Keith Cheryl Christian Andrea Roger Hannah Noah Martha Gerald Jacqueline Carl Frances
Terry Gloria Sean Ann Austin Teresa Arthur Kathryn Lawrence Sara Jesse Janice Dylan Jean Bryan Alice Joe Madison
Jordan Doris Billy Abigail Bruce Julia Albert Judy Willie Grace Gabriel Denise Logan Amber Alan Marilyn Juan
Beverly Wayne Danielle Roy Theresa Ralph Sophia Randy Marie Eugene Diana Vincent Brittany Russell Natalie Elijah
Isabella Louis Charlotte Bobby Rose Philip Alexis Johnny Kayla Wei Mei Hiroshi Yuki Priya Raj Ahmed Fatima
Mohammed Aisha Carlos Sofia Luis Ana Miguel Lucia Omar Leila Ivan Olga Pierre Chloe Hans Greta Kwame Amara
""".split())

LAST_NAMES = frozenset("""
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson
Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson
Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell
Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris
Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel
Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales
Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West
Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison
Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford
Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner
Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols
Wang Li Zhang Liu Yamamoto Tanaka Sato Singh Kumar Shah Khan Ali Hassan Ivanov Dubois Muller Schneider Okafor
""".split())

# honorifics of other countries' notes introduce a name as "Mrs" does: Indian "Smt."/"Shri"/"Kum.",
# German "Herr"/"Frau", French "Mme"/"Mlle", Spanish "Sra."/"Sr."
TITLES = ("Dr", "Mr", "Mrs", "Ms", "Miss", "Prof", "Nurse", "Sister", "Smt", "Shri", "Shrimati", "Kum", "Herr", "Frau",
          "Mme", "Mlle", "Sra", "Srta")
CREDENTIALS = ("MD", "DO", "RN", "NP", "PA-C", "PA", "PhD", "MBBS", "PharmD", "LPN", "CNA", "MSW",
               # social work, diabetes education, nursing and allied-health post-nominals of US, UK and Commonwealth notes
               "LCSW", "LICSW", "LMSW", "CDCES", "CDE", "CNS", "CNM", "CRNA", "DNP", "APRN", "FNP", "FNP-C", "MBChB",
               "MBBCh", "FRCP", "FRACP", "FRCS", "MRCP", "MRCGP", "FRCPC", "RD", "RDN", "CCC-SLP", "OTR", "DPT", "RRT",
               "IBCLC", "BCBA", "RPh", "MPharm", "BPharm", "RM", "RGN", "RMN", "BSc", "MSc")
# relatives, friends and household: a capitalised word right after one is that person's name ("wife Ngozi",
# "Father: LIM WEI JIE", "friend/teammate malia"); one list for the rule-based and the statistical recognizers
RELATIONS = ("wife", "husband", "son", "daughter", "mother", "father", "mum", "mom", "dad", "sister", "brother", "partner",
             "friend", "spouse", "caregiver", "carer", "neighbor", "neighbour", "aunt", "uncle", "niece", "nephew", "cousin",
             "grandson", "granddaughter", "grandmother", "grandfather", "girlfriend", "boyfriend", "fiancé", "fiancee",
             "fiance", "flatmate", "housemate", "roommate", "teammate", "colleague", "coach")
# words introducing a person's name in clinical notes (label: Name)
NAME_LABELS = (
    "patient", "pt", "name", "patient name", "attending", "resident", "fellow", "physician", "provider",
    "signed by", "electronically signed by", "dictated by", "transcribed by", "referred by", "referring physician",
    "pcp", "primary care", "cc", "contact", "emergency contact", "next of kin", "nok", "guardian", "witness",
    "interpreter", "author", "seen by", "reviewed by", "consultant", "surgeon", "nurse", "caregiver",
    # German, Dutch, French, Spanish patient labels ("Patientin: …", "Patiënt: …", "Nom: …")
    "patientin", "patiënt", "patiente", "paciente", "nom", "nombre",
    # name fields of registration forms and labels, in several languages ("Surname: X", "Forename: Y", "Prénom : Z")
    "surname", "forename", "forenames", "given name", "given names", "given name(s)", "first name", "last name",
    "family name", "middle name", "maiden name", "preferred name", "full name", "prénom", "nom de famille",
    "nom de naissance", "vorname", "nachname", "apellido", "apellidos", "nombres", "voornaam", "achternaam", "cognome",
    # who recorded, checked or signed a report
    "verified by", "checked by", "recorded by", "record by", "reported by", "authorised by", "authorized by",
    "approved by", "completed by", "prepared by", "entered by", "witnessed by", "validated by", "scribe",
)
# message headers: a name after these only with a colon ("From: Soo-yeon Park", never "from Boston")
COLON_NAME_LABELS = ("from", "to", "sender", "recipient", "sent by", "reply from", "requested by", "ordered by")
# words that look like capitalised names in notes but are not
NOT_NAMES = frozenset("""
The A An He She His Her They Patient Pt Name Date Admission Discharge History Plan Assessment Diagnosis
Hospital Clinic Medical Center Department Emergency Contact Phone Fax Email Address Street Road Avenue
Blood Pressure Heart Rate Denies Reports Today Yesterday Tomorrow Monday Tuesday Wednesday Thursday Friday
Saturday Sunday January February March April May June July August September October November December
MD DO RN NP PA No Yes Mild Severe Type Chronic Acute Follow Up Signed Seen Reviewed Note Notes Labs
Abdomen Lungs Pain Vitals Wound Tolerating Symptoms Results Home Call Lives Moved Age Surgery Last Insulin
Pacemaker Implant Specimen Study Policy Account Billing Driver Prescriber Licence License Vehicle Records Login
Telehealth Social Medical Chart Insurance Health Her His Case Discussed Referred Admitted Discharged Email
Okay Ok Alright Yeah For Female Male Because After Before During If Oh Thank Thanks Hello Hi Sure Well So Can Do Does How Why When Where Which Who What I My It
That There Should Will Could Would Please Doctor Is Are Was Were Am Have Has Had Yes Also Just Now Then But And
Dr Mr Mrs Ms Prof Miss Stable Clear Soft Continue Current Unremarkable Diet Given Started Stopped Denied Noted Exam Physical
ID DOB MRN NHS NHI CHI OHIP Identifier Number
Consultant Consultants Registrar Surgeon Surgeons Pharmacist Secretary Midwife Physiotherapist Outpatients Inpatients
Outpatient Inpatient Senior Junior Specialist Hosp Smt Shri Kum Herr Frau Mme Mlle Sra Srta Attendant
Na Ca Mg Cl Fe Zn Cu Unit Theatre Breast Team
Kannada Tamil Telugu Hindi Urdu Punjabi Gujarati Marathi Bengali Malayalam Tagalog Samoan Tongan Maori Yoruba Igbo
Hausa Zulu Xhosa Afrikaans Mandarin Cantonese Vietnamese Arabic Farsi Dari Pashto Somali Amharic Tigrinya Swahili
English Spanish French German Italian Portuguese Russian Polish Dutch Greek Turkish Korean Japanese Hebrew Romanian
Ukrainian Czech Hungarian Swedish Norwegian Danish Finnish Creole Nepali Burmese Khmer Lao Hmong Thai Malay Indonesian
Sinhala Kurdish Albanian Serbian Croatian Bosnian Bulgarian Lithuanian Latvian Slovak Auslan ASL BSL Makaton
Surname Forename Forenames Prénom Vorname Nachname Apellidos Voornaam Achternaam Cognome
Fr Ch Coach Teammate Colleague
Chefarzt Chefärztin Oberarzt Oberärztin Assistenzarzt Assistenzärztin Facharzt Fachärztin Stationsarzt Stationsärztin
Urgences Urgencias Réanimation Reanimación Notaufnahme Intensivstation Soccorso Consultorio Policlinique Poliklinik
""".split())
# "Fr"/"Ch" are catheter gauges ("19 Fr Blake drain"); German, French and Spanish roles and departments are capitalised
# like names ("Oberarzt", "Service des Urgences")
# roles, honorifics, electrolyte symbols and languages ("counselled in Kannada") above: capitalised in every note ("Consultant Breast Surgeon", "Na 131")
