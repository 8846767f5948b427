"""The English features of the catalogue: morphology, syntax, semantics and pragmatics.

Word lists are paired where a free product would make odd sentences: each verb has the objects
it fits (ACTIONS), each noun the adjectives it fits (NOUN_ADJECTIVES), each comparative its subjects.
"""

from tools.lingualens_catalogue.build import combos, feature


def _table(text: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """'head words: item item' lines -> [((head, words), [item, item])]."""
    rows = []
    for line in text.strip().splitlines():
        head, items = line.split(":")
        rows.append((tuple(head.split()), items.split()))
    return rows


# ---- English word lists -------------------------------------------------------------------
NAMES = ["Anna", "Tom", "Maria", "David", "Lucy", "Peter", "Sarah", "James", "Laura", "Daniel", "Kate"]
NAMES += ["Michael", "Sophie", "Ben", "Olivia", "Mark"]
OTHERS = ["Sam", "Emma", "Jack", "Nina", "Leo", "Chloe", "Oscar", "Ruby", "Adam", "Grace"]
# Regular verbs only (past = participle = base + -ed) with the singular objects each one fits.
ACTION_TABLE = _table(
    """
    paint painted: fence wall door gate bench boat shed chair
    clean cleaned: kitchen car window floor oven bathroom table mirror
    open opened: door window box gate letter drawer parcel
    fix fixed: car bike roof sink lamp printer chair tap
    wash washed: car dog shirt floor window towel
    check checked: report bill list email map answer
    move moved: table sofa bed desk piano box
    repair repaired: roof fence bike clock engine watch
    close closed: door window gate box shop
    cook cooked: dinner rice soup fish pasta
    lock locked: door gate car safe bike
    fill filled: bottle glass tank bucket kettle
    print printed: report ticket letter map photo
    bake baked: cake bread pie
    water watered: plant garden lawn
    pack packed: bag suitcase lunch box
    sign signed: letter form contract card
    answer answered: question phone letter email
    polish polished: car table floor mirror
    iron ironed: shirt dress
    deliver delivered: parcel letter package pizza
    """
)
VERBS = [verb for verb, _ in ACTION_TABLE]  # (base, past)
ACTIONS = [(verb, obj) for verb, objs in ACTION_TABLE for obj in objs]  # ((base, past), object)
# Verbs whose result can be looked at afterwards ("The cake that Anna baked looks great").
RESULT_VERBS = {"paint", "clean", "fix", "wash", "repair", "cook", "bake", "polish", "iron"}
THIRD = {"fix": "fixes", "wash": "washes", "polish": "polishes"}
# Nouns (singular, plural -s) with the adjectives that fit them.
ANIMALS = [(n, n + "s") for n in ["cat", "dog", "bird", "horse", "rabbit", "duck", "cow", "goat", "pig", "hen"]]
ANIMAL_ADJECTIVES = ["small", "big", "old", "young", "hungry", "quiet", "noisy", "friendly", "tired", "calm"]
THINGS = [
    (n, n + "s")
    for n in ["book", "cup", "chair", "bag", "lamp", "plate", "table", "pen", "bottle", "coat", "bowl", "desk", "towel"]
]
THING_ADJECTIVES = ["small", "big", "old", "new", "heavy", "cheap", "expensive", "clean"]
NOUNS = ANIMALS + THINGS
NOUN_ADJECTIVES = [(n, a) for n in ANIMALS for a in ANIMAL_ADJECTIVES] + [
    (n, a) for n in THINGS for a in THING_ADJECTIVES
]
# Places where each kind of noun is found ("Every cow on the farm", "Every cup in the shop").
NOUN_PLACES = [(n, p) for n in ANIMALS for p in ["on the farm", "in the field", "in the village"]] + [
    (n, p) for n in THINGS for p in ["in the room", "in the shop", "in the house", "in the hotel"]
]
STATES = ["ready", "tired", "hungry", "late", "here", "busy", "awake", "asleep", "upstairs", "outside", "sick"]
STATES += ["at home", "at work"]
GIFTS = ["book", "ticket", "key", "letter", "pen", "map", "photo", "card", "note", "bag", "cake", "umbrella"]


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
                lambda n, vo: (f"{n} {vo[0][1]} the {vo[1]}.", f"{n} {third_person(vo[0][0])} the {vo[1]}.", vo[0][1]),
                NAMES,
                ACTIONS,
            ),
        )
    )
    dets = ["The", "My", "Our", "Her"]
    add(
        feature(
            "en",
            "morphology",
            "Plural -s",
            "Plural noun suffix -s (with plural agreement); counterfactual singular.",
            combos(
                "plural",
                lambda d, na: (f"{d} {na[0][1]} are {na[1]}.", f"{d} {na[0][0]} is {na[1]}.", na[0][1]),
                dets,
                NOUN_ADJECTIVES,
            ),
        )
    )
    comparatives = [
        (a.split()[0], a.split()[1], ts.split(","))
        for a, ts in [
            ("tall taller", "The tree,My brother,The boy,The plant,Her son"),
            ("cold colder", "The river,The night,The water,The room,The wind"),
            ("warm warmer", "The room,The water,The weather,The sea,The house"),
            ("long longer", "The queue,The list,Her hair,The walk,The meeting"),
            ("short shorter", "The queue,The list,Her hair,The meeting"),
            ("fast faster", "The train,The car,My computer,The bus"),
            ("slow slower", "The train,My computer,The bus,The queue"),
            ("small smaller", "The class,The group,The team,The garden"),
            ("quiet quieter", "The street,The office,The room,The park,The house"),
            ("loud louder", "The music,The noise,The street,The party"),
            ("clean cleaner", "The kitchen,The river,The air,The room"),
            ("cheap cheaper", "The bread,The ticket,The rent,The coffee"),
            ("strong stronger", "The wind,The coffee,The signal,My brother"),
            ("bright brighter", "The room,The sky,The screen,The lamp"),
            ("dark darker", "The sky,The room,The street,The forest"),
            ("soft softer", "The bread,The bed,The grass,The pillow"),
            ("fresh fresher", "The air,The bread,The fish"),
            ("safe safer", "The road,The street,The park,The bridge"),
        ]
    ]
    cmp_pairs = [(t, (base, er)) for base, er, ts in comparatives for t in ts]
    cmp_frames = ["{t} is {a} now.", "{t} is {a} these days.", "{t} seems {a} now."]
    add(
        feature(
            "en",
            "morphology",
            "Comparative -er",
            "Comparative adjective suffix -er; counterfactual positive degree.",
            combos(
                "cmp",
                lambda ta, f: (f.format(t=ta[0], a=ta[1][1]), f.format(t=ta[0], a=ta[1][0]), ta[1][1]),
                cmp_pairs,
                cmp_frames,
            ),
        )
    )
    # (simple present, -ing form): the places each activity fits
    ing = [
        (v.split()[0], v.split()[1], ps.split(","))
        for v, ps in [
            ("reads reading", "at home,in the garden,in the library,on the train,in bed"),
            ("sings singing", "at home,in the garden,in the shower,on stage,in the kitchen"),
            ("cooks cooking", "at home,in the kitchen,outside"),
            ("works working", "at home,in the office,in the garden,outside,at the cafe"),
            ("sleeps sleeping", "at home,upstairs,on the sofa,in the car"),
            ("plays playing", "in the garden,outside,in the park,upstairs"),
            ("walks walking", "in the park,outside,to school,to work"),
            ("writes writing", "at home,in the library,in the office,at the cafe"),
            ("paints painting", "in the garden,in the studio,outside,at home"),
            ("swims swimming", "in the lake,in the pool,in the sea"),
            ("dances dancing", "in the kitchen,on stage,at the party"),
            ("draws drawing", "at home,in the garden,in the library"),
            ("rests resting", "at home,on the sofa,upstairs"),
            ("waits waiting", "outside,at the station,in the car"),
            ("runs running", "in the park,outside,to school"),
            ("trains training", "at the gym,in the park,outside"),
        ]
    ]
    ing_pairs = [(v3, vi, p) for v3, vi, ps in ing for p in ps]
    add(
        feature(
            "en",
            "morphology",
            "Progressive -ing",
            "Present progressive be + V-ing; counterfactual simple present.",
            combos(
                "ing", lambda n, v: (f"{n} is {v[1]} {v[2]}.", f"{n} {v[0]} {v[2]}.", f"is {v[1]}"), NAMES, ing_pairs
            ),
        )
    )
    un = [
        (a, s)
        for a, ss in [
            ("happy", "The child,Her sister,The customer,My neighbour,The team"),
            ("kind", "His reply,Her comment,The remark,The teacher"),
            ("clear", "The answer,Her story,The plan,The message,The rule,The sign"),
            ("fair", "The rule,The test,The decision,The price,The game"),
            ("safe", "The road,The bridge,The building,The area,The ladder"),
            ("usual", "The result,The weather,The request,His reply,The taste,The sound"),
            ("lucky", "The team,The player,My neighbour"),
            ("tidy", "The room,The kitchen,The desk,The garden"),
            ("friendly", "The dog,The waiter,The neighbour,His reply"),
            ("popular", "The decision,The plan,The rule,The film,The teacher"),
            ("known", "The singer,The writer,The cause,The reason"),
            ("healthy", "The food,The diet,The snack"),
            ("comfortable", "The chair,The bed,The seat,The silence"),
            ("expected", "The result,The visit,The call,The news"),
            ("pleasant", "The smell,The trip,The meeting,The weather"),
            ("helpful", "The clerk,The reply,The advice,The guide"),
            ("certain", "The future,The outcome,The result"),
            ("reliable", "The bus,The car,The witness,The printer"),
        ]
        for s in ss.split(",")
    ]
    add(
        feature(
            "en",
            "morphology",
            "Negative prefix un-",
            "Derivational prefix un- on adjectives; counterfactual the base.",
            combos(
                "un",
                lambda a, v: (f"{a[1]} {v} un{a[0]}.", f"{a[1]} {v} {a[0]}.", f"un{a[0]}"),
                un,
                ["was", "is", "seemed"],
            ),
        )
    )
    # past verb: the -ly adverbs (from adjectives) that fit it
    ly = [
        (v, a)
        for v, adjs in [
            ("answered", "quick slow quiet calm polite honest brief soft careful loud firm kind"),
            ("spoke", "quiet soft loud slow calm clear polite kind firm honest brief"),
            ("walked", "quick slow quiet careful calm soft"),
            ("worked", "quick slow quiet careful"),
            ("drove", "slow careful quick safe"),
            ("smiled", "soft warm polite kind bright"),
            ("laughed", "loud quiet soft nervous"),
            ("waited", "quiet calm patient nervous"),
            ("listened", "quiet careful polite patient"),
            ("sang", "soft loud quiet sweet beautiful"),
            ("nodded", "slow polite quick calm"),
            ("left", "quick quiet"),
        ]
        for a in adjs.split()
    ]
    add(
        feature(
            "en",
            "morphology",
            "Adverb suffix -ly",
            "Manner adverb formed with -ly; counterfactual without it.",
            combos("ly", lambda n, va: (f"{n} {va[0]} {va[1]}ly.", f"{n} {va[0]}.", f"{va[1]}ly"), NAMES, ly),
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
                lambda n, vo: (
                    f"The {vo[1]} was {vo[0][1]} by {n}.",
                    f"{n} {vo[0][1]} the {vo[1]}.",
                    f"was {vo[0][1]} by",
                ),
                NAMES,
                ACTIONS,
            ),
        )
    )
    add(
        feature(
            "en",
            "syntax",
            "Subject-auxiliary inversion",
            "Yes/no question with the auxiliary before the subject; counterfactual the declarative.",
            combos(
                "inv",
                lambda n, s, aux: (f"{aux} {n} {s}?", f"{n} {aux.lower()} {s}.", f"{aux} {n}"),
                NAMES,
                STATES,
                ["Is", "Was"],
            ),
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
                lambda n, vo, p: (
                    f"The {vo[1]} that {n} {vo[0][1]} {p}.",
                    f"The {vo[1]} {p}.",
                    f"that {n} {vo[0][1]}",
                ),
                NAMES,
                [vo for vo in ACTIONS if vo[0][0] in RESULT_VERBS],
                ["looks great", "looks good", "is perfect"],
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
                lambda n, vo: (
                    f"It was {n} who {vo[0][1]} the {vo[1]}.",
                    f"{n} {vo[0][1]} the {vo[1]}.",
                    f"It was {n} who",
                ),
                NAMES,
                ACTIONS,
            ),
        )
    )
    small_things = ["cup", "pen", "key", "book", "phone", "letter", "coin", "map", "note", "ticket", "ring"]
    small_things += ["spoon", "wallet"]
    indoors = ["on the table", "on the shelf", "on the desk", "under the bed", "near the door", "on the floor"]
    indoors += ["by the window"]
    animals = ["cat", "dog", "fox", "rabbit", "frog", "hedgehog", "duck", "bird"]
    outdoors = ["in the garden", "near the house", "behind the shed", "on the path", "in the yard", "by the pond"]
    there = [(n, w) for n in small_things for w in indoors] + [(n, w) for n in animals for w in outdoors]
    add(
        feature(
            "en",
            "syntax",
            "Existential there",
            "Existential there-construction; counterfactual locative clause.",
            combos(
                "there",
                lambda nw, be: (f"There {be} a {nw[0]} {nw[1]}.", f"A {nw[0]} {be} {nw[1]}.", f"There {be}"),
                there,
                ["is", "was"],
            ),
        )
    )
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
                GIFTS,
                ["gave", "sent", "showed", "handed", "brought"],
            ),
        )
    )
    # semantics
    # (base, third person): the objects each one fits
    likes = [
        (v, t)
        for vs, ts in [
            ("like likes,love loves,enjoy enjoys,remember remembers,hate hates", "film book song game show story trip"),
            ("understand understands", "plan question rule joke story email film"),
            ("know knows", "answer way rule song story address"),
            ("want wants,need needs", "car key job money ticket map room bike"),
            ("trust trusts", "plan map doctor news driver report"),
        ]
        for v in [tuple(x.split()) for x in vs.split(",")]
        for t in ts.split()
    ]
    add(
        feature(
            "en",
            "semantics",
            "Negation",
            "Sentential negation with do-support; counterfactual affirmative.",
            combos(
                "neg",
                lambda n, vt: (f"{n} does not {vt[0][0]} the {vt[1]}.", f"{n} {vt[0][1]} the {vt[1]}.", "does not"),
                NAMES,
                likes,
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
                lambda n, vo, w: (
                    f"{n} might {vo[0][0]} the {vo[1]} {w}.",
                    f"{n} will {vo[0][0]} the {vo[1]} {w}.",
                    "might",
                ),
                NAMES,
                ACTIONS,
                ["today", "tomorrow", "later"],
            ),
        )
    )
    add(
        feature(
            "en",
            "semantics",
            "Universal quantifier every",
            "Universal quantification; counterfactual with one.",
            combos(
                "every",
                lambda npa: (f"Every {npa[0]} {npa[1]} is {npa[2]}.", f"One {npa[0]} {npa[1]} is {npa[2]}.", "Every"),
                [(n[0], p, a) for n, p in NOUN_PLACES for m, a in NOUN_ADJECTIVES if m == n],
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
                STATES,
                ["let you know", "call you", "tell you", "text you"],
            ),
        )
    )
    add(
        feature(
            "en",
            "semantics",
            "Intensifier very",
            "Degree intensifier; counterfactual the bare adjective.",
            combos(
                "very",
                lambda d, na, be: (f"{d} {na[0][0]} {be} very {na[1]}.", f"{d} {na[0][0]} {be} {na[1]}.", "very"),
                ["The", "My"],
                NOUN_ADJECTIVES,
                ["is", "was"],
            ),
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
                lambda n, m, vo: (
                    f"{n} made {m} {vo[0][0]} the {vo[1]}.",
                    f"{n} watched {m} {vo[0][0]} the {vo[1]}.",
                    "made",
                ),
                NAMES,
                OTHERS,
                ACTIONS,
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
                lambda vo, w: (
                    f"Could you please {vo[0][0]} the {vo[1]}{w}?",
                    f"{vo[0][0].capitalize()} the {vo[1]}{w}.",
                    "Could you please",
                ),
                ACTIONS,
                ["", " today", " for me"],
            ),
        )
    )
    # what went wrong again, by kind of thing
    mishaps = [
        (d, e)
        for ds, es in [
            ("bus,train,plane,tram,ferry", "is late again,is delayed again,was cancelled again,is full again"),
            ("taxi,delivery,plumber", "is late again"),
            ("bus,train,car,van", "broke down again"),
            (
                "printer,heater,phone,lift,computer,radio,fridge,laptop,dishwasher",
                "is broken again,stopped working again",
            ),
            ("computer,laptop,phone,website", "crashed again"),
        ]
        for d in ds.split(",")
        for e in es.split(",")
    ]
    add(
        feature(
            "en",
            "pragmatics",
            "Irony",
            "Ironic praise of a bad event; counterfactual a literal complaint.",
            combos(
                "irony",
                lambda p, de: (f"Oh {p}, the {de[0]} {de[1]}.", f"Oh no, the {de[0]} {de[1]}.", f"Oh {p}"),
                ["great", "wonderful", "perfect", "lovely"],
                mishaps,
            ),
        )
    )
    hedges = ["I think", "Maybe", "Perhaps", "I guess", "It seems that", "I suppose", "I believe"]
    add(
        feature(
            "en",
            "pragmatics",
            "Hedging",
            "A hedge softening a claim; counterfactual the bare assertion.",
            combos(
                "hedge",
                lambda h, na: (f"{h} the {na[0][0]} is {na[1]}.", f"The {na[0][0]} is {na[1]}.", h),
                hedges,
                NOUN_ADJECTIVES,
            ),
        )
    )
    ready = ["tea", "coffee", "room", "car", "table", "cake", "report", "soup", "bath", "food"]
    greet_rests = [f"the {o} is ready." for o in ready] + ["how are you?", "nice to see you.", "come in."]
    add(
        feature(
            "en",
            "pragmatics",
            "Greeting",
            "A greeting opening the utterance; counterfactual a bare vocative.",
            combos(
                "greet",
                lambda g, n, r: (f"{g} {n}, {r}", f"{n}, {r}", g),
                ["Hello", "Hi", "Hey", "Good morning", "Good afternoon", "Good evening"],
                NAMES,
                greet_rests,
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
                "sorry",
                lambda vo, f: (
                    "Sorry, " + f.format(b=vo[0][0], p=vo[0][1], o=vo[1]),
                    "Look, " + f.format(b=vo[0][0], p=vo[0][1], o=vo[1]),
                    "Sorry",
                ),
                ACTIONS,
                ["I {p} the {o}.", "I already {p} the {o}.", "I haven't {p} the {o} yet."],
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
                GIFTS,
                NAMES,
            ),
        )
    )
    return fs
