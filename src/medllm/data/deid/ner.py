"""Optional names from a local NER model folder (spaCy pipeline or transformers token-classifier).
Only a path on disk is accepted; nothing is ever downloaded."""
from __future__ import annotations

from pathlib import Path

from presidio_analyzer import EntityRecognizer, RecognizerResult


class LocalNerRecognizer(EntityRecognizer):
    def __init__(self, path: str):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(f"NER model folder not found: {self.path} (medllm never downloads models)")
        super().__init__(supported_entities=["NAME"], name="local_ner", supported_language="en")

    def load(self) -> None:
        if (self.path / "meta.json").is_file():  # a spaCy pipeline folder
            import spacy

            nlp = spacy.load(self.path)
            self._run = lambda text: [(e.start_char, e.end_char) for e in nlp(text).ents if e.label_ in ("PERSON", "PER")]
        else:
            from transformers import pipeline

            ner = pipeline("token-classification", model=str(self.path), aggregation_strategy="simple")
            self._run = lambda text: [(e["start"], e["end"]) for e in ner(text) if e["entity_group"] in ("PER", "PERSON")]

    def analyze(self, text, entities, nlp_artifacts=None):
        return [RecognizerResult("NAME", s, e, 0.8) for s, e in self._run(text)]
