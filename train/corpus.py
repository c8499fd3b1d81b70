"""A seeded generator of varied English sentences whose words are all in CMUdict (so that
pocketsphinx can force-align them). Templates give natural prosody: statements, questions,
lists, exclamations and clauses with pauses."""
from __future__ import annotations

import numpy as np

NOUNS = """time person year way day thing man world life hand part child eye woman place work week case
point number group problem fact house water room mother area money story month lot book family
night river mountain city road garden window table letter doctor teacher music picture morning
island bridge market village forest ocean engine machine planet rocket station kitchen basket
bottle pepper butter baby puppy bubble mirror ribbon pebble marble button meadow pillow""".split()
ADJS = """good new first last long great little own other old right big high different small large
next early young important few public bad same able happy quiet bright purple broken gentle
empty heavy simple famous simple careful modern ancient sudden perfect mellow bumpy""".split()
VERBS_PAST = """found made saw took gave told felt became left brought began kept held wrote stood heard
moved played opened painted carried dropped pushed pulled missed watched cooked fixed built
bought bumped mopped grabbed""".split()
VERBS = """find make see take give tell feel leave bring begin keep hold write hear move play open
paint carry drop push pull miss watch cook fix build buy bump""".split()
NAMES = """Peter Mary Bob Anna Mike Paul Emma Maya Tom Lucy Sam Bill Molly Ben""".split()
PREPS = """in on under over near behind beside across through from with without""".split()
ADVS = """quickly slowly carefully quietly suddenly happily finally maybe perhaps really""".split()
TEMPLATES = [
    "{Name} {vpast} the {adj} {noun} {prep} the {noun2}.",
    "The {adj} {noun} is {prep} the {noun2}, and {name2} {vpast} it {adv}.",
    "Why did {name} {verb} the {noun} {prep} the {adj} {noun2}?",
    "Please {verb} the {noun}, the {noun2}, and the {adj} {noun3}.",
    "{Adv}, {name} {vpast} a {adj} {noun}!",
    "We {vpast} the {noun} {prep} the {noun2}; then we {vpast2} the {adj} {noun3}.",
    "Can you {verb} my {adj} {noun} before the {noun2} opens?",
    "{Name} and {name2} {vpast} {num} {adj} {nouns} {prep} the {noun2}.",
    "Oh, I {vpast} the {noun} {adv}. It was {adj}, very {adj2}.",
    "Maybe the {noun} will {verb} the {adj} {noun2} by {num}.",
]
NUMS = "two three four five six seven eight nine ten".split()


def sentence(rng: np.random.Generator) -> str:
    pick = lambda xs: xs[rng.integers(len(xs))]
    name, name2 = pick(NAMES), pick(NAMES)
    fields = dict(name=name, Name=name, name2=name2, noun=pick(NOUNS), noun2=pick(NOUNS), noun3=pick(NOUNS),
                  nouns=pick(NOUNS) + "s", adj=pick(ADJS), adj2=pick(ADJS), vpast=pick(VERBS_PAST),
                  vpast2=pick(VERBS_PAST), verb=pick(VERBS), prep=pick(PREPS), adv=pick(ADVS),
                  Adv=pick(ADVS).capitalize(), num=pick(NUMS))
    return pick(TEMPLATES).format(**fields)


def utterance(rng: np.random.Generator) -> str:
    """One or two sentences."""
    return " ".join(sentence(rng) for _ in range(int(rng.integers(1, 3))))
