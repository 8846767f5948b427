"""The Chinese features of the catalogue: morphology, syntax, semantics and pragmatics."""

from tools.lingualens_catalogue.build import combos, feature

# ---- Chinese word lists -------------------------------------------------------------------
ZH_SUBJECTS = ["小明", "妈妈", "老师", "我哥哥", "小红", "老王"]
ZH_VO = [
    ("吃", "苹果"),
    ("喝", "牛奶"),
    ("洗", "衣服"),
    ("打开", "窗户"),
    ("关上", "门"),
    ("卖", "旧车"),
    ("修", "自行车"),
    ("写", "信"),
    ("擦", "桌子"),
]
ZH_PLACES = ["公园", "家里", "学校", "院子"]


def chinese_features() -> list[dict]:
    fs = []
    add = fs.append
    s, vo, places = ZH_SUBJECTS, ZH_VO, ZH_PLACES
    # morphology
    redup = [
        ("看", "这本书"),
        ("试", "这件衣服"),
        ("尝", "这道菜"),
        ("听", "这首歌"),
        ("问", "老师"),
        ("想", "这个问题"),
        ("聊", "这件事"),
        ("走", "这条路"),
    ]
    add(
        feature(
            "zh",
            "morphology",
            "Verb reduplication VV (看看)",
            "动词重叠 VV, a tentative 'have a look'; counterfactual the single verb.",
            combos("vv", lambda a, v: (f"{a}想{v[0]}{v[0]}{v[1]}。", f"{a}想{v[0]}{v[1]}。", v[0] * 2), s, redup),
        )
    )
    add(
        feature(
            "zh",
            "morphology",
            "Verb reduplication V一V (看一看)",
            "动词重叠 V一V; counterfactual the single verb.",
            combos(
                "v1v",
                lambda a, v: (f"{a}想{v[0]}一{v[0]}{v[1]}。", f"{a}想{v[0]}{v[1]}。", f"{v[0]}一{v[0]}"),
                s,
                redup,
            ),
        )
    )
    aabb = [
        ("高兴", "高高兴兴"),
        ("干净", "干干净净"),
        ("清楚", "清清楚楚"),
        ("快乐", "快快乐乐"),
        ("安静", "安安静静"),
        ("整齐", "整整齐齐"),
        ("舒服", "舒舒服服"),
        ("认真", "认认真真"),
    ]
    holders = ["房间", "教室", "孩子们", "院子", "大家", "今天"]
    add(
        feature(
            "zh",
            "morphology",
            "Adjective reduplication AABB",
            "形容词重叠 AABB (vivid form); counterfactual 很 + adjective.",
            combos("aabb", lambda h, a: (f"{h}{a[1]}的。", f"{h}很{a[0]}。", a[1]), holders, aabb),
        )
    )
    people = ["同学", "朋友", "老师", "孩子", "学生", "工人", "客人", "医生"]
    vps = ["来了", "在外面等", "很高兴", "在唱歌"]
    add(
        feature(
            "zh",
            "morphology",
            "Plural suffix 们",
            "复数后缀 们 on human nouns; counterfactual the bare noun.",
            combos("men", lambda p, v: (f"{p}们{v}。", f"{p}{v}。", f"{p}们"), people, vps),
        )
    )
    nums = ["一", "二", "三", "四", "五"]
    items = ["本书", "张票", "件衣服", "个苹果"]
    add(
        feature(
            "zh",
            "morphology",
            "Ordinal prefix 第",
            "序数前缀 第; counterfactual the cardinal number.",
            combos("di", lambda a, n, i: (f"{a}买了第{n}{i}。", f"{a}买了{n}{i}。", f"第{n}"), s, nums, items),
        )
    )
    er = [("玩儿", "玩"), ("一会儿", "一会"), ("花儿", "花")]
    er_frames = {"玩儿": "{a}在{p}玩{x}。", "一会儿": "{a}在{p}等了{x}。", "花儿": "{a}在{p}画了一朵{x}。"}
    add(
        feature(
            "zh",
            "morphology",
            "Erhua suffix 儿",
            "儿化 suffix; counterfactual the plain form.",
            combos(
                "er",
                lambda a, p, e: (
                    er_frames[e[0]].format(a=a, p=p, x=e[0]),
                    er_frames[e[0]].format(a=a, p=p, x=e[1]),
                    e[0],
                ),
                s,
                places,
                er,
            ),
        )
    )
    # syntax
    add(
        feature(
            "zh",
            "syntax",
            "把 construction",
            "把字句: 把 + object before the verb; counterfactual plain SVO.",
            combos("ba", lambda a, v: (f"{a}把{v[1]}{v[0]}了。", f"{a}{v[0]}了{v[1]}。", f"把{v[1]}"), s, vo),
        )
    )
    add(
        feature(
            "zh",
            "syntax",
            "被 passive",
            "被字句 passive with the agent after 被; counterfactual active SVO.",
            combos("bei", lambda a, v: (f"{v[1]}被{a}{v[0]}了。", f"{a}{v[0]}了{v[1]}。", f"被{a}"), s, vo),
        )
    )
    when = ["昨天", "上午", "坐火车", "和朋友一起"]
    add(
        feature(
            "zh",
            "syntax",
            "是…的 cleft",
            "是…的 construction focusing time or manner; counterfactual with 了.",
            combos(
                "shide", lambda a, w, v: (f"{a}是{w}{v}的。", f"{a}{w}{v}了。", f"是{w}"), s, when, ["来", "到", "回家"]
            ),
        )
    )
    result = [
        ("洗", "干净", "衣服"),
        ("写", "完", "作业"),
        ("听", "懂", "这个问题"),
        ("看", "完", "这本书"),
        ("做", "好", "晚饭"),
        ("找", "到", "钥匙"),
        ("打", "破", "杯子"),
        ("学", "会", "游泳"),
    ]
    add(
        feature(
            "zh",
            "syntax",
            "Resultative complement",
            "结果补语 V + result; counterfactual the bare verb.",
            combos("res", lambda a, r: (f"{a}{r[0]}{r[1]}了{r[2]}。", f"{a}{r[0]}了{r[2]}。", r[0] + r[1]), s, result),
        )
    )
    anota = [
        ("去", "北京"),
        ("喜欢", "音乐"),
        ("吃", "米饭"),
        ("想", "回家"),
        ("要", "咖啡"),
        ("认识", "他"),
        ("知道", "答案"),
        ("是", "学生"),
    ]
    add(
        feature(
            "zh",
            "syntax",
            "A-not-A question",
            "正反问句 V不V; counterfactual the declarative.",
            combos(
                "anota", lambda a, v: (f"{a}{v[0]}不{v[0]}{v[1]}？", f"{a}{v[0]}{v[1]}。", f"{v[0]}不{v[0]}"), s, anota
            ),
        )
    )
    adjs = ["高", "大", "快", "忙", "聪明", "年轻", "累"]
    add(
        feature(
            "zh",
            "syntax",
            "比 comparative",
            "比字句 comparison; counterfactual equality with 一样.",
            combos("bi", lambda a, b, j: (f"{a}比{b}{j}。", f"{a}和{b}一样{j}。", f"比{b}"), s[:3], s[3:], adjs),
        )
    )
    # semantics
    add(
        feature(
            "zh",
            "semantics",
            "Perfective aspect 了",
            "完成体 了 after the verb; counterfactual without aspect.",
            combos("le", lambda a, v: (f"{a}{v[0]}了{v[1]}。", f"{a}{v[0]}{v[1]}。", f"{v[0]}了"), s, vo),
        )
    )
    guo = [
        ("去", "北京"),
        ("吃", "烤鸭"),
        ("看", "这部电影"),
        ("学", "法语"),
        ("见", "他的妈妈"),
        ("读", "这本小说"),
        ("爬", "长城"),
        ("坐", "飞机"),
    ]
    add(
        feature(
            "zh",
            "semantics",
            "Experiential aspect 过",
            "经历体 过; counterfactual without aspect.",
            combos("guo", lambda a, v: (f"{a}{v[0]}过{v[1]}。", f"{a}{v[0]}{v[1]}。", f"{v[0]}过"), s, guo),
        )
    )
    add(
        feature(
            "zh",
            "semantics",
            "Progressive 正在",
            "进行体 正在; counterfactual without aspect.",
            combos("zz", lambda a, v: (f"{a}正在{v[0]}{v[1]}。", f"{a}{v[0]}{v[1]}。", "正在"), s, vo),
        )
    )
    add(
        feature(
            "zh",
            "semantics",
            "Negation 没有",
            "否定 没有 (did not); counterfactual the affirmative with 了.",
            combos("meiyou", lambda a, v: (f"{a}没有{v[0]}{v[1]}。", f"{a}{v[0]}了{v[1]}。", "没有"), s, vo),
        )
    )
    add(
        feature(
            "zh",
            "semantics",
            "Possibility 可能",
            "认识情态 可能; counterfactual certainty 一定.",
            combos(
                "keneng", lambda a, v: (f"{a}明天可能会{v[0]}{v[1]}。", f"{a}明天一定会{v[0]}{v[1]}。", "可能"), s, vo
            ),
        )
    )
    groups = ["我们", "他们", "学生们", "孩子们", "同学们", "客人们"]
    dou_vps = ["来了", "喜欢这本书", "去过北京", "会唱歌", "在教室里", "很高兴"]
    add(
        feature(
            "zh",
            "semantics",
            "Universal 都",
            "全称量化 都; counterfactual without it.",
            combos("dou", lambda g, v: (f"{g}都{v}。", f"{g}{v}。", "都"), groups, dou_vps),
        )
    )
    # pragmatics
    addressees = ["我们", "咱们", "你", "你们"]
    add(
        feature(
            "zh",
            "pragmatics",
            "Suggestion particle 吧",
            "句末语气词 吧 (suggestion); counterfactual without it.",
            combos("ba2", lambda a, v: (f"{a}{v[0]}{v[1]}吧。", f"{a}{v[0]}{v[1]}。", "吧"), addressees, vo),
        )
    )
    add(
        feature(
            "zh",
            "pragmatics",
            "Particle 呢",
            "句末语气词 呢 (ongoing state); counterfactual without it.",
            combos("ne", lambda a, v: (f"{a}在{v[0]}{v[1]}呢。", f"{a}在{v[0]}{v[1]}。", "呢"), s, vo),
        )
    )
    add(
        feature(
            "zh",
            "pragmatics",
            "Question particle 吗",
            "疑问语气词 吗; counterfactual the statement.",
            combos("ma", lambda a, v: (f"{a}{v[0]}了{v[1]}吗？", f"{a}{v[0]}了{v[1]}。", "吗"), s, vo),
        )
    )
    hearers = ["小明", "老师", "妈妈", "同学们", "大家", "老王"]
    add(
        feature(
            "zh",
            "pragmatics",
            "Polite request 请",
            "礼貌 请 in requests; counterfactual the bare imperative.",
            combos("qing", lambda h, v: (f"{h}，请{v[0]}{v[1]}。", f"{h}，{v[0]}{v[1]}。", "请"), hearers, vo),
        )
    )
    topics = ["今天", "这个地方", "这道菜", "你的房间", "这本书", "外面"]
    feel = ["热", "冷", "好", "漂亮", "安静", "有意思"]
    add(
        feature(
            "zh",
            "pragmatics",
            "Exclamative 啊",
            "感叹语气词 啊; counterfactual the plain statement.",
            combos("a", lambda t, f: (f"{t}真{f}啊！", f"{t}真{f}。", "啊"), topics, feel),
        )
    )
    titles = ["王老师", "李医生", "张经理", "爷爷", "奶奶", "陈教授"]
    nin = ["好", "辛苦了", "要喝茶吗", "明天有空吗", "慢慢吃", "先坐"]
    add(
        feature(
            "zh",
            "pragmatics",
            "Honorific 您",
            "敬称 您; counterfactual the plain 你.",
            combos("nin", lambda t, v: (f"{t}，您{v}。", f"{t}，你{v}。", "您"), titles, nin),
        )
    )
    return fs
