"""The English features of the catalogue: morphology, syntax, semantics and pragmatics."""

from tools.lingualens_catalogue.build import combos, feature

# ---- English word lists -------------------------------------------------------------------
NAMES = ["Anna", "Tom", "Maria", "David", "Lucy", "Peter"]
OTHERS = ["Sam", "Emma", "Jack", "Nina"]
# base, past (= participle for these regular verbs)
VERBS = [
    ("paint", "painted"),
    ("clean", "cleaned"),
    ("open", "opened"),
    ("fix", "fixed"),
    ("wash", "washed"),
    ("check", "checked"),
    ("move", "moved"),
    ("repair", "repaired"),
]
OBJECTS = ["door", "car", "window", "table", "fence", "box"]
NOUNS = [("cat", "cats"), ("dog", "dogs"), ("book", "books"), ("bird", "birds"), ("cup", "cups"), ("tree", "trees")]
ADJECTIVES = ["small", "old", "new", "quiet", "red", "clean"]
THIRD = {"fix": "fixes", "wash": "washes"}


def third_person(verb: str) -> str:
    return THIRD.get(verb, verb + "s")


def english_features() -> list[dict]:
    fs = []
    add = fs.append
    # morphology
    add(
        feature(
            "en",
            "morphology",
            "Past tense -ed",
            "Regular past tense suffix -ed; counterfactual in the present.",
            combos(
                "past",
                lambda n, v, o: (f"{n} {v[1]} the {o}.", f"{n} {third_person(v[0])} the {o}.", v[1]),
                NAMES,
                VERBS,
                OBJECTS,
            ),
        )
    )
    add(
        feature(
            "en",
            "morphology",
            "Plural -s",
            "Plural noun suffix -s (with plural agreement); counterfactual singular.",
            combos("plural", lambda n, a: (f"The {n[1]} are {a}.", f"The {n[0]} is {a}.", n[1]), NOUNS, ADJECTIVES),
        )
    )
    comparatives = [
        ("tall", "taller"),
        ("small", "smaller"),
        ("old", "older"),
        ("fast", "faster"),
        ("cold", "colder"),
        ("long", "longer"),
        ("warm", "warmer"),
        ("short", "shorter"),
    ]
    things = ["The tree", "My brother", "The river", "This road", "The night"]
    add(
        feature(
            "en",
            "morphology",
            "Comparative -er",
            "Comparative adjective suffix -er; counterfactual positive degree.",
            combos("cmp", lambda t, a: (f"{t} is {a[1]} now.", f"{t} is {a[0]} now.", a[1]), things, comparatives),
        )
    )
    ing = [
        ("read", "reading"),
        ("sing", "singing"),
        ("cook", "cooking"),
        ("work", "working"),
        ("sleep", "sleeping"),
        ("play", "playing"),
        ("walk", "walking"),
        ("write", "writing"),
    ]
    places = ["at home", "in the garden", "in the kitchen", "outside"]
    add(
        feature(
            "en",
            "morphology",
            "Progressive -ing",
            "Present progressive be + V-ing; counterfactual simple present.",
            combos(
                "ing", lambda n, v, p: (f"{n} is {v[1]} {p}.", f"{n} {v[0]}s {p}.", f"is {v[1]}"), NAMES, ing, places
            ),
        )
    )
    un = ["happy", "kind", "clear", "fair", "safe", "usual", "lucky", "tidy"]
    subjects = ["The answer", "Her story", "The room", "This plan", "The result", "His reply"]
    add(
        feature(
            "en",
            "morphology",
            "Negative prefix un-",
            "Derivational prefix un- on adjectives; counterfactual the base.",
            combos("un", lambda s, a: (f"{s} was un{a}.", f"{s} was {a}.", f"un{a}"), subjects, un),
        )
    )
    ly = ["quick", "slow", "quiet", "careful", "loud", "soft", "calm", "brave"]
    verbs_ly = ["answered", "spoke", "walked", "worked"]
    add(
        feature(
            "en",
            "morphology",
            "Adverb suffix -ly",
            "Manner adverb formed with -ly; counterfactual without it.",
            combos("ly", lambda n, a, v: (f"{n} {v} {a}ly.", f"{n} {v}.", f"{a}ly"), NAMES, ly, verbs_ly),
        )
    )
    # syntax
    add(
        feature(
            "en",
            "syntax",
            "Passive voice",
            "Passive: be + past participle + by-phrase, the patient as subject; counterfactual the active clause.",
            combos(
                "passive",
                lambda n, v, o: (f"The {o} was {v[1]} by {n}.", f"{n} {v[1]} the {o}.", f"was {v[1]} by"),
                NAMES,
                VERBS,
                OBJECTS,
            ),
        )
    )
    states = ["ready", "tired", "at home", "hungry", "late", "here"]
    add(
        feature(
            "en",
            "syntax",
            "Subject-auxiliary inversion",
            "Yes/no question with the auxiliary before the subject; counterfactual the declarative.",
            combos("inv", lambda n, s: (f"Is {n} {s}?", f"{n} is {s}.", f"Is {n}"), NAMES, states),
        )
    )
    add(
        feature(
            "en",
            "syntax",
            "Relative clause",
            "A noun modified by a that-relative clause; counterfactual without it.",
            combos(
                "rel",
                lambda n, v, o, a: (f"The {o} that {n} {v[1]} was {a}.", f"The {o} was {a}.", f"that {n} {v[1]}"),
                NAMES,
                VERBS[:4],
                OBJECTS,
                ADJECTIVES[:3],
            ),
        )
    )
    add(
        feature(
            "en",
            "syntax",
            "It-cleft",
            "It-cleft focusing the subject; counterfactual the plain clause.",
            combos(
                "cleft",
                lambda n, v, o: (f"It was {n} who {v[1]} the {o}.", f"{n} {v[1]} the {o}.", f"It was {n} who"),
                NAMES,
                VERBS,
                OBJECTS,
            ),
        )
    )
    where = ["on the table", "in the garden", "near the door", "under the bed"]
    add(
        feature(
            "en",
            "syntax",
            "Existential there",
            "Existential there-construction; counterfactual locative clause.",
            combos("there", lambda n, w: (f"There is a {n[0]} {w}.", f"A {n[0]} is {w}.", "There is"), NOUNS, where),
        )
    )
    gifts = ["book", "ticket", "key", "letter", "pen", "map"]
    add(
        feature(
            "en",
            "syntax",
            "Double-object dative",
            "Ditransitive with two bare objects; counterfactual the prepositional to-dative.",
            combos(
                "dative",
                lambda n, m, g, v: (f"{n} {v} {m} the {g}.", f"{n} {v} the {g} to {m}.", f"{m} the {g}"),
                NAMES,
                OTHERS,
                gifts,
                ["gave", "sent", "showed"],
            ),
        )
    )
    # semantics
    likes = [("like", "likes"), ("want", "wants"), ("need", "needs"), ("remember", "remembers")]
    topics = ["film", "book", "song", "plan", "city", "game"]
    add(
        feature(
            "en",
            "semantics",
            "Negation",
            "Sentential negation with do-support; counterfactual affirmative.",
            combos(
                "neg",
                lambda n, v, t: (f"{n} does not {v[0]} the {t}.", f"{n} {v[1]} the {t}.", "does not"),
                NAMES,
                likes,
                topics,
            ),
        )
    )
    add(
        feature(
            "en",
            "semantics",
            "Possibility modal might",
            "Epistemic possibility; counterfactual with will.",
            combos(
                "might",
                lambda n, v, o: (f"{n} might {v[0]} the {o} today.", f"{n} will {v[0]} the {o} today.", "might"),
                NAMES,
                VERBS,
                OBJECTS,
            ),
        )
    )
    rooms = ["room", "shop", "garden", "village"]
    add(
        feature(
            "en",
            "semantics",
            "Universal quantifier every",
            "Universal quantification; counterfactual with one.",
            combos(
                "every",
                lambda n, r, a: (f"Every {n[0]} in the {r} is {a}.", f"One {n[0]} in the {r} is {a}.", "Every"),
                NOUNS,
                rooms,
                ADJECTIVES,
            ),
        )
    )
    add(
        feature(
            "en",
            "semantics",
            "Conditional if",
            "A conditional clause; counterfactual a causal since-clause.",
            combos(
                "if",
                lambda n, s, m: (f"If {n} is {s}, we will {m}.", f"Since {n} is {s}, we will {m}.", "If"),
                NAMES,
                states,
                ["leave", "wait", "start"],
            ),
        )
    )
    add(
        feature(
            "en",
            "semantics",
            "Intensifier very",
            "Degree intensifier; counterfactual the bare adjective.",
            combos("very", lambda n, a: (f"The {n[0]} is very {a}.", f"The {n[0]} is {a}.", "very"), NOUNS, ADJECTIVES),
        )
    )
    add(
        feature(
            "en",
            "semantics",
            "Causative make",
            "Causation with make + bare infinitive; counterfactual perception.",
            combos(
                "make",
                lambda n, m, v, o: (f"{n} made {m} {v[0]} the {o}.", f"{n} watched {m} {v[0]} the {o}.", "made"),
                NAMES,
                OTHERS,
                VERBS[:4],
                OBJECTS[:3],
            ),
        )
    )
    # pragmatics
    add(
        feature(
            "en",
            "pragmatics",
            "Polite request",
            "Conventionally polite request; counterfactual a bare imperative.",
            combos(
                "please",
                lambda v, o: (f"Could you please {v[0]} the {o}?", f"{v[0].capitalize()} the {o}.", "Could you please"),
                VERBS,
                OBJECTS,
            ),
        )
    )
    devices = ["bus", "train", "printer", "heater", "phone", "lift", "computer", "radio"]
    events = ["is broken again", "stopped working again", "is late again"]
    add(
        feature(
            "en",
            "pragmatics",
            "Irony",
            "Ironic praise of a bad event; counterfactual a literal complaint.",
            combos(
                "irony", lambda d, e: (f"Oh great, the {d} {e}.", f"Oh no, the {d} {e}.", "Oh great"), devices, events
            ),
        )
    )
    hedges = ["I think", "Maybe", "It seems that"]
    add(
        feature(
            "en",
            "pragmatics",
            "Hedging",
            "A hedge softening a claim; counterfactual the bare assertion.",
            combos(
                "hedge",
                lambda h, n, a: (f"{h} the {n[0]} is {a}.", f"The {n[0]} is {a}.", h),
                hedges,
                NOUNS,
                ADJECTIVES,
            ),
        )
    )
    greetings = ["Hello", "Hi", "Good morning"]
    add(
        feature(
            "en",
            "pragmatics",
            "Greeting",
            "A greeting opening the utterance; counterfactual a bare vocative.",
            combos(
                "greet",
                lambda g, n, o: (f"{g} {n}, the {o} is ready.", f"{n}, the {o} is ready.", g),
                greetings,
                NAMES,
                OBJECTS,
            ),
        )
    )
    add(
        feature(
            "en",
            "pragmatics",
            "Apology",
            "An apology marker; counterfactual a neutral discourse marker.",
            combos(
                "sorry", lambda v, o: (f"Sorry, I {v[1]} the {o}.", f"Look, I {v[1]} the {o}.", "Sorry"), VERBS, OBJECTS
            ),
        )
    )
    add(
        feature(
            "en",
            "pragmatics",
            "Thanking",
            "Expression of gratitude; counterfactual a neutral handover.",
            combos(
                "thanks",
                lambda g, n: (f"Thank you for the {g}, {n}.", f"Here is the {g}, {n}.", "Thank you"),
                gifts,
                NAMES,
            ),
        )
    )
    return fs
