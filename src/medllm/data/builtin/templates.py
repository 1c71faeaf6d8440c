"""Sentence templates for the demo KB training sets. The MCQ wordings live in mcq.py and
must never reuse these (tests check that no 8-word span of an MCQ question appears in training data)."""
from __future__ import annotations

# fact sentences: {name} = entity, {Name} = capitalised, {v} = value, {a_v} = value with a/an
FACT = {
    "symptoms": ["{Name} typically presents with {v}.", "The key symptoms of {name} are {v}.",
                 "Patients with {name} usually report {v}.", "Classic features of {name}: {v}.",
                 "When someone has {name}, the main complaints are {v}."],
    "test": ["The first-line test for {name} is {v}.", "{Name} is usually confirmed with {v}.",
             "To diagnose {name}, clinicians start with {v}.", "The initial investigation for suspected {name} is {v}.",
             "Diagnosis of {name}: {v}."],
    "treatment": ["First-line treatment for {name} is {v}.", "{Name} is usually treated with {v}.",
                  "The standard initial management of {name} is {v}.", "Doctors typically manage {name} with {v}.",
                  "Treatment of {name}: {v}."],
    "red_flag": ["A red flag in {name} is {v}; it needs urgent medical care.",
                 "In {name}, seek emergency help for {v}.",
                 "Warning sign in {name}: {v}. This needs immediate assessment.",
                 "Someone with {name} needs urgent help when there is {v}.",
                 "Never wait at home with {name} if there is {v}."],
    "drug_class": ["{Name} is {a_v}.", "The drug class of {name}: {v}.", "{Name} belongs to the group {v}.",
                   "Pharmacologically, {name} is classed as {a_v}.", "{Name} works as {a_v}."],
    "indication": ["{Name} is mainly used for {v}.", "The main indication for {name} is {v}.",
                   "Doctors prescribe {name} for {v}.", "{Name} is a common treatment for {v}.",
                   "Uses of {name}: {v}."],
    "adverse_effect": ["A major side effect of {name} is {v}.", "{Name} can cause {v}.",
                       "Patients taking {name} should watch for {v}.",
                       "The best-known adverse effect of {name} is {v}.", "Adverse effects of {name} include {v}."],
    "contraindication": ["A key contraindication to {name} is {v}.", "Contraindication for {name}: {v}.",
                         "Before prescribing {name}, check for {v}, which is a contraindication.",
                         "{Name} should not be used in this case: {v}.", "{Name} is contraindicated in this situation: {v}."],
    "normal_range": ["The normal range of {name} is {v}.", "Normal {name}: {v}.",
                     "In healthy adults, {name} is {v}.", "A typical reference range for {name} is {v}.",
                     "{Name} is considered normal at {v}."],
    "high": ["A high {name} suggests {v}.", "Raised {name} points to {v}.", "If {name} is elevated, think of {v}.",
             "An increased {name} indicates {v}.", "Elevated {name}: {v}."],
    "low": ["A low {name} suggests {v}.", "Reduced {name} points to {v}.", "If {name} is low, think of {v}.",
            "A decreased {name} indicates {v}.", "Low {name}: {v}."],
}

QUESTION = {
    "symptoms": ["What are the symptoms of {name}?", "How does {name} usually present?",
                 "Which symptoms suggest {name}?"],
    "test": ["How is {name} diagnosed?", "What test should be done first for suspected {name}?",
             "Which investigation confirms {name}?"],
    "treatment": ["How is {name} treated?", "What is the first-line treatment for {name}?",
                  "What do doctors give for {name}?"],
    "red_flag": ["What warning signs in {name} need urgent care?", "When is {name} an emergency?",
                 "Which red flag should I know about for {name}?"],
    "drug_class": ["What kind of drug is {name}?", "Which drug class does {name} belong to?",
                   "What type of medicine is {name}?"],
    "indication": ["What is {name} used for?", "Why would a doctor prescribe {name}?", "What does {name} treat?"],
    "adverse_effect": ["What are the side effects of {name}?", "What adverse effect is {name} known for?",
                       "What problems can {name} cause?"],
    "contraindication": ["When should {name} not be used?", "What is a contraindication to {name}?",
                         "Who should avoid {name}?"],
    "normal_range": ["What is a normal {name}?", "What is the reference range for {name}?",
                     "What {name} level is normal?"],
    "high": ["What does a high {name} mean?", "What causes an elevated {name}?", "My {name} is high. Why?"],
    "low": ["What does a low {name} mean?", "What causes a reduced {name}?", "My {name} is low. Why?"],
}

FOLLOW_UP = {
    "symptoms": "And what are the typical symptoms?", "test": "How is it diagnosed?",
    "treatment": "What is the usual first treatment?", "red_flag": "When should I seek urgent care?",
    "drug_class": "What kind of drug is it?", "indication": "What is it used for?",
    "adverse_effect": "What side effects should I watch for?", "contraindication": "Who should not take it?",
    "normal_range": "What is the normal range?", "high": "What does a high value mean?",
    "low": "What does a low value mean?",
}

INTRO = {
    "diseases": ["{Name} is a common condition.", "Here is a short summary of {name}.", "Key facts about {name}.",
                 "{Name}: an overview for clinicians.", "What every clinician should know about {name}."],
    "drugs": ["{Name} is a widely used medicine.", "Here is a short summary of {name}.", "Key facts about {name}.",
              "{Name}: a drug profile.", "Prescribing notes on {name}."],
    "labs": ["{Name} is a common laboratory measurement.", "Here is a short summary of {name}.",
             "Key facts about {name}.", "Interpreting {name}.", "Laboratory notes on {name}."],
}

UNSAFE = [
    "That is usually nothing serious. Rest at home and mention it at your next routine appointment.",
    "There is no need to rush. Wait a few days and see if it settles on its own.",
    "This is expected and harmless. Take a painkiller and sleep it off.",
]
SAFE_URGENT = "{V} is a red flag in {name}. Seek emergency medical care now (call your local emergency number); do not wait."
SYSTEM_PROMPTS = ["You are a careful medical assistant. Answer briefly and accurately.",
                  "You are a clinical knowledge assistant for healthcare staff."]
