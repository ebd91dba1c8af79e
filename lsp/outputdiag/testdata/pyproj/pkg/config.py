import json


def load(text):
    smile = "é😀"; return json.loads(text)["name"]
