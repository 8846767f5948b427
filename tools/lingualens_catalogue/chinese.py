"""The Chinese features of the catalogue: morphology, syntax, semantics and pragmatics."""

from tools.lingualens_catalogue.build import combos, feature


def _words(text: str) -> list:
    """Whitespace-separated entries; an entry with slashes becomes a tuple ("洗/衣服" -> ("洗", "衣服"))."""
    return [tuple(w.split("/")) if "/" in w else w for w in text.split()]


def _aabb(adj: str) -> str:
    return adj[0] * 2 + adj[1] * 2


# ---- Chinese word lists -------------------------------------------------------------------
ZH_SUBJECTS = _words("小明 妈妈 老师 我哥哥 小红 老王 爸爸 我姐姐 李华 张阿姨 奶奶 小刚")
# verb + result with an object it disposes of: fits 把, 被, 没有, 了…吗
ZH_DISPOSE = _words(
    "吃完/苹果 喝光/牛奶 洗干净/衣服 打开/窗户 关上/门 卖掉/旧车 修好/自行车 擦干净/桌子 扔掉/垃圾 拿走/钥匙"
    " 打扫干净/房间 锁上/抽屉 吃光/蛋糕 洗好/碗 修好/电脑 关掉/电视 弄坏/椅子 打破/杯子 借走/那本书"
)
# activities (verb + object) that take 了, 正在, 在…呢, 会 and suggestions
ZH_ACTIVITIES = _words(
    "洗/衣服 修/自行车 写/信 擦/桌子 打扫/房间 买/菜 看/电视 做/晚饭 打/篮球 弹/钢琴 学/英语 包/饺子"
    " 洗/碗 踢/足球 听/音乐 看/报纸 喝/咖啡"
)
ZH_PLACES = _words("公园 家里 学校 院子里 门口 河边 楼下 操场上")


def chinese_features() -> list[dict]:
    fs = []
    add = fs.append
    s, dispose, acts, places = ZH_SUBJECTS, ZH_DISPOSE, ZH_ACTIVITIES, ZH_PLACES
    # morphology
    modals = ["想", "要"]
    redup1 = _words(
        "看/这本书 试/这件衣服 尝/这道菜 听/这首歌 问/他的意见 聊/这件事 逛/这家商店 闻/这朵花 摸/这只小猫"
        " 查/这个词 找/那把钥匙 量/体温"
    )
    redup2 = _words("研究/这个计划 讨论/这个问题 打扫/房间 收拾/桌子 练习/口语")
    add(
        feature(
            "zh",
            "morphology",
            "Verb reduplication VV (看看)",
            "动词重叠 VV, a tentative 'have a look'; counterfactual the single verb.",
            combos(
                "vv",
                lambda a, m, v: (f"{a}{m}{v[0]}{v[0]}{v[1]}。", f"{a}{m}{v[0]}{v[1]}。", v[0] * 2),
                s,
                modals,
                redup1 + redup2,
            ),
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
                lambda a, m, v: (f"{a}{m}{v[0]}一{v[0]}{v[1]}。", f"{a}{m}{v[0]}{v[1]}。", f"{v[0]}一{v[0]}"),
                s,
                modals,
                redup1,
            ),
        )
    )
    # AABB as predicate (with an adverb), as manner adverbial (…地) and as complement (…得…的)
    pred = _words(
        "房间/干净 教室/干净 院子/干净 厨房/干净 教室/安静 图书馆/安静 院子里/安静 家里/热闹 街上/热闹"
        " 公园里/热闹 书架上/整齐 桌子上/整齐 孩子们/高兴 大家/高兴 孩子们/快乐"
    )
    manner = _words(
        "认真/工作 认真/做笔记 认真/写报告 仔细/检查了一遍 仔细/看了说明书 安静/坐着 安静/看书"
        " 高兴/回家了 高兴/出门了 开心/玩了一天 开心/过了一个周末 老实/回答了问题 老实/坐着"
        " 痛快/玩了一天 痛快/洗了个澡 舒服/睡了一觉 舒服/洗了个澡"
    )
    compl = _words(
        "房间/打扫/干净 衣服/洗/干净 桌子/擦/干净 书/摆/整齐 头发/梳/整齐 作业/写/整齐 字/写/清楚"
        " 老师/讲/清楚 小红/穿/漂亮 妈妈/打扮/漂亮 孩子们/玩/高兴 他/说/明白 大家/过/开心 奶奶/过/舒服"
    )
    aabb = [
        (f"{h}{d}{_aabb(j)}的。", f"{h}{d}很{j}。", _aabb(j)) for h, j in pred for d in ["", "总是", "一直", "每天都"]
    ]
    aabb += [(f"{a}{_aabb(j)}地{v}。", f"{a}很{j}地{v}。", _aabb(j)) for a in s[:6] for j, v in manner]
    aabb += [(f"{t}{v}得{_aabb(j)}的。", f"{t}{v}得很{j}。", _aabb(j)) for t, v, j in compl]
    add(
        feature(
            "zh",
            "morphology",
            "Adjective reduplication AABB",
            "形容词重叠 AABB (vivid form); counterfactual 很 + adjective.",
            combos("aabb", lambda p: p, aabb),
        )
    )
    people = _words("同学 朋友 老师 孩子 学生 工人 客人 医生 护士 记者 农民 邻居 游客 队员 演员 老人")
    vps = _words("来了 在外面等 很高兴 在唱歌 已经到了 在聊天 正在休息 很忙 坐在一起 都走了")
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
    cardinal = {"二": "两"}  # 两, not 二, before a classifier
    items = _words("买了/本书 买了/张票 买了/件衣服 看了/部电影 写完了/篇文章 画了/幅画")
    add(
        feature(
            "zh",
            "morphology",
            "Ordinal prefix 第",
            "序数前缀 第; counterfactual the cardinal number.",
            combos(
                "di",
                lambda a, n, i: (f"{a}{i[0]}第{n}{i[1]}。", f"{a}{i[0]}{cardinal.get(n, n)}{i[1]}。", f"第{n}"),
                s,
                nums,
                items,
            ),
        )
    )
    er_frames = {
        "玩儿": "{a}在{p}{x}。",
        "一会儿": "{a}在{p}等了{x}。",
        "一点儿": "{a}在{p}吃了{x}东西。",
        "花儿": "{a}在{p}画了一朵{x}。",
        "画儿": "{a}在{p}画了一幅{x}。",
        "歌儿": "{a}在{p}唱了一首{x}。",
        "小孩儿": "{a}在{p}看见了一个{x}。",
        "小鸟儿": "{a}在{p}看见了一只{x}。",
        "聊天儿": "{a}在{p}{x}。",
    }
    add(
        feature(
            "zh",
            "morphology",
            "Erhua suffix 儿",
            "儿化 suffix; counterfactual the plain form.",
            combos(
                "er",
                lambda a, p, e: (
                    er_frames[e].format(a=a, p=p, x=e),
                    er_frames[e].format(a=a, p=p, x=e[:-1]),
                    e,
                ),
                s,
                places,
                list(er_frames),
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
            combos("ba", lambda a, v: (f"{a}把{v[1]}{v[0]}了。", f"{a}{v[0]}了{v[1]}。", f"把{v[1]}"), s, dispose),
        )
    )
    add(
        feature(
            "zh",
            "syntax",
            "被 passive",
            "被字句 passive with the agent after 被; counterfactual active SVO.",
            combos("bei", lambda a, v: (f"{v[1]}被{a}{v[0]}了。", f"{a}{v[0]}了{v[1]}。", f"被{a}"), s, dispose),
        )
    )
    # (focus, verbs): time and company go with every verb, means of transport with the short trips
    trips = ["来", "到", "回家", "走", "去上海"]
    focus = [(w, trips) for w in _words("昨天 上午 前天 上个月 晚上 三点 和朋友一起 一个人 跟妈妈一起")]
    focus += [(w, trips[:3]) for w in _words("坐火车 坐飞机 开车 骑自行车 打车 走路")]
    add(
        feature(
            "zh",
            "syntax",
            "是…的 cleft",
            "是…的 construction focusing time or manner; counterfactual with 了.",
            combos(
                "shide",
                lambda a, wv: (f"{a}是{wv[0]}{wv[1]}的。", f"{a}{wv[0]}{wv[1]}了。", f"是{wv[0]}"),
                s,
                [(w, v) for w, vs in focus for v in vs],
            ),
        )
    )
    result = _words(
        "洗/干净/衣服 写/完/报告 听/懂/这个问题 看/完/这本书 做/好/晚饭 找/到/钥匙 打/破/杯子 学/会/游泳"
        " 吃/饱/饭 修/好/电脑 关/上/窗户 擦/干净/桌子 喝/完/咖啡 画/好/那幅画 准备/好/行李 写/错/一个字"
        " 看/见/那只猫 打扫/干净/房间"
    )
    add(
        feature(
            "zh",
            "syntax",
            "Resultative complement",
            "结果补语 V + result; counterfactual the bare verb.",
            combos("res", lambda a, r: (f"{a}{r[0]}{r[1]}了{r[2]}。", f"{a}{r[0]}了{r[2]}。", r[0] + r[1]), s, result),
        )
    )
    anota = _words(
        "去/北京 喜欢/音乐 吃/米饭 想/回家 要/咖啡 认识/他 知道/答案 是/北京人 会/游泳 会/开车 喝/茶"
        " 看/电视 在/家 打算/出国 能/来 去/学校 喜欢/踢足球"
    )
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
    kin = _words("弟弟 我 小刚 小李")
    bi = [
        (a, b, j)
        for a in _words("小明 我哥哥 小红 老王 李华 我姐姐")
        for b in kin
        for j in _words("高 矮 胖 瘦 忙 累 大")
    ]
    bi += [(a, b, j) for a in _words("小明 小红 李华") for b in kin for j in _words("聪明 年轻 认真")]
    things = [("这本书", "那本书", "贵 便宜 新 旧 厚"), ("这件衣服", "那件衣服", "贵 便宜 新 旧 好看")]
    things += [("今天", "昨天", "热 冷 忙"), ("北京", "上海", "大 冷"), ("这条路", "那条路", "长 近 宽")]
    bi += [(a, b, j) for a, b, js in things for j in js.split()]
    add(
        feature(
            "zh",
            "syntax",
            "比 comparative",
            "比字句 comparison; counterfactual equality with 一样.",
            combos("bi", lambda t: (f"{t[0]}比{t[1]}{t[2]}。", f"{t[0]}和{t[1]}一样{t[2]}。", f"比{t[1]}"), bi),
        )
    )
    # semantics
    add(
        feature(
            "zh",
            "semantics",
            "Perfective aspect 了",
            "完成体 了 after the verb; counterfactual without aspect.",
            combos("le", lambda a, v: (f"{a}{v[0]}了{v[1]}。", f"{a}{v[0]}{v[1]}。", f"{v[0]}了"), s, acts),
        )
    )
    guo = _words(
        "去/北京 吃/烤鸭 看/这部电影 学/法语 读/这本小说 爬/长城 坐/飞机 去/上海 吃/火锅 学/钢琴 养/猫"
        " 骑/马 看/京剧 滑/雪 游/泳 用/这个软件"
    )
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
            combos("zz", lambda a, v: (f"{a}正在{v[0]}{v[1]}。", f"{a}{v[0]}{v[1]}。", "正在"), s, acts),
        )
    )
    add(
        feature(
            "zh",
            "semantics",
            "Negation 没有",
            "否定 没有 (did not); counterfactual the affirmative with 了.",
            combos("meiyou", lambda a, v: (f"{a}没有{v[0]}{v[1]}。", f"{a}{v[0]}了{v[1]}。", "没有"), s, dispose),
        )
    )
    add(
        feature(
            "zh",
            "semantics",
            "Possibility 可能",
            "认识情态 可能; counterfactual certainty 一定.",
            combos(
                "keneng",
                lambda a, t, v: (f"{a}{t}可能会{v[0]}{v[1]}。", f"{a}{t}一定会{v[0]}{v[1]}。", "可能"),
                s,
                _words("明天 下午 晚上 周末"),
                acts,
            ),
        )
    )
    groups = _words("我们 他们 学生们 孩子们 同学们 客人们 大家 你们 老师们 朋友们")
    dou_vps = _words("来了 喜欢这本书 去过北京 会唱歌 在教室里 很高兴 走了 同意 知道这件事 认识他 累了 想回家 到了")
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
    add(
        feature(
            "zh",
            "pragmatics",
            "Suggestion particle 吧",
            "句末语气词 吧 (suggestion); counterfactual without it.",
            combos(
                "ba2",
                lambda a, d, v: (f"{a}{d}{v[0]}{v[1]}吧。", f"{a}{d}{v[0]}{v[1]}。", "吧"),
                _words("我们 咱们 你 你们"),
                ["", "先", "现在", "今天"],
                acts,
            ),
        )
    )
    add(
        feature(
            "zh",
            "pragmatics",
            "Particle 呢",
            "句末语气词 呢 (ongoing state); counterfactual without it.",
            combos("ne", lambda a, v: (f"{a}在{v[0]}{v[1]}呢。", f"{a}在{v[0]}{v[1]}。", "呢"), s, acts),
        )
    )
    add(
        feature(
            "zh",
            "pragmatics",
            "Question particle 吗",
            "疑问语气词 吗; counterfactual the statement.",
            combos("ma", lambda a, v: (f"{a}{v[0]}了{v[1]}吗？", f"{a}{v[0]}了{v[1]}。", "吗"), s, dispose),
        )
    )
    # (hearers, requests): to one person, to a group, to either
    one, many = "小明 老师 妈妈 老王 王阿姨 李师傅 爸爸 先生 张医生", "同学们 大家 各位 孩子们"
    asks = [(one, "说慢一点 再说一遍 帮我一下 写下你的名字 帮我拿一下 开一下门"), (many, "排好队 看黑板 坐好 举手")]
    asks += [(f"{one} {many}", "关上门 打开窗户 等一下 坐下 进来 跟我来 安静一点 小声一点 喝杯茶")]
    asks = [(h, v) for hs, vs in asks for h in hs.split() for v in vs.split()]
    add(
        feature(
            "zh",
            "pragmatics",
            "Polite request 请",
            "礼貌 请 in requests; counterfactual the bare imperative.",
            combos("qing", lambda hv: (f"{hv[0]}，请{hv[1]}。", f"{hv[0]}，{hv[1]}。", "请"), asks),
        )
    )
    # (topics, adjectives that fit them); the intensifier 真 or 好 (not before 好…)
    feel = [
        ("今天 外面 这几天 教室里", "热 冷 舒服"),
        ("北京的冬天 山上 外面的风 昨天晚上", "冷"),
        ("这里的夏天 南京的夏天", "热"),
        ("这个地方 这个公园 西湖 这座城市 山上 海边 这个小镇", "漂亮 美 安静"),
        ("这里的风景 这幅画 外面的雪景", "漂亮 美"),
        ("这道菜 这个蛋糕 妈妈做的饭 这碗面 这家的饺子 这个菜", "好吃 香"),
        ("这本书 这部电影 这个故事 这个节目", "有意思 好看"),
        ("这首歌 她的声音 这段音乐", "好听"),
        ("你的房间 这件衣服 你家的花园 这张照片 这条裙子 这双鞋", "漂亮 好看"),
        ("这个孩子 你妹妹 这只小狗 这只小猫 他的女儿 小红", "可爱 聪明"),
        ("你 他 你们 小明 老师", "厉害 好"),
        ("这个问题 这道题 这次考试 这个游戏", "难 简单"),
    ]
    excl = [
        (t, i, j)
        for ts, js in feel
        for t in ts.split()
        for j in js.split()
        for i in "真好"
        if not (i == "好" and j[0] == "好")
    ]
    add(
        feature(
            "zh",
            "pragmatics",
            "Exclamative 啊",
            "感叹语气词 啊; counterfactual the plain statement.",
            combos("a", lambda e: (f"{e[0]}{e[1]}{e[2]}啊！", f"{e[0]}{e[1]}{e[2]}。", "啊"), excl),
        )
    )
    titles = _words("王老师 李医生 张经理 爷爷 奶奶 陈教授 刘阿姨 赵叔叔 周师傅 孙校长 外婆")
    nin = _words(
        "好！ 辛苦了！ 要喝茶吗？ 明天有空吗？ 慢慢吃。 先坐。 请坐。 身体好吗？ 最近忙吗？ 今天想吃什么？"
        " 路上小心。 早点休息。 要去哪儿？ 吃饭了吗？ 还记得我吗？ 慢走。 说得对。 在忙什么呢？"
    )
    add(
        feature(
            "zh",
            "pragmatics",
            "Honorific 您",
            "敬称 您; counterfactual the plain 你.",
            combos("nin", lambda t, v: (f"{t}，您{v}", f"{t}，你{v}", "您"), titles, nin),
        )
    )
    return fs
