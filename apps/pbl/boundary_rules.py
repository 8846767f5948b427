"""The boundary policy's rules for learner messages (English and Chinese), by family:

- injection: fake system, developer or assistant lines; claims that the rules changed or the
  checks are off; role-play that puts the agent in the learner's place ("act as the student");
- transformation of finished work: translate, rewrite, summarise, polish, turn into a list or
  a table, when the result is meant for the deliverable or is the agent's own answer; and
  "make it sound like a student wrote it";
- piecemeal: the deliverable a piece at a time ("just the first paragraph", "a line for each
  heading", "fill in that part").

Fair questions these must leave alone: how-to and concept questions, feedback on the learner's
own text, resource requests, and summaries of a resource asked for to understand it. The
patterns were tuned on tests/pbl/data/boundary_cases.json ('seen') and boundary_tuning.json;
boundary_heldout.json measures them (bench/pbl.py)."""

import re

_FLAGS = re.IGNORECASE | re.MULTILINE

# A line that pretends to come from the system, a developer, an admin or the assistant itself.
FAKE_ROLE_LINE = re.compile(
    r"^\W{0,6}(system|developer|dev|admin|administrator|assistant|sys|operator)( (note|message|prompt|override))?"
    r"\W{0,6}\s*[:\]>)#-]"
    r"|<<\s*sys\s*>>|\[/?inst\]|<\|im_start\|>|\bsystem override\b|\b(admin|god|developer|debug|dan) mode\b"
    r"|^\s*(系统|管理员|开发者|系统提示)\s*[:：]|【系统】|\[系统\]",
    _FLAGS,
)
# Claims that the rules changed, were lifted, or the checks are off.
_GUARD = (
    r"(rules?|polic(y|ies)|checks?|filters?|restrictions?|limits?|boundar(y|ies)|guard ?rails?|safety|"
    r"guidelines?|tutor rules)"
)
RULES_CHANGED = re.compile(
    rf"\b{_GUARD}\b[^.?!\n]{{0,25}}\b(changed|updated|suspended|lifted|removed|disabled|off|turned off|switched off"
    r"|no longer apply|don'?t apply|do not apply|are gone)\b"
    rf"|\b(turned|switched|shut) off (your|the|all)?\s*{_GUARD}"
    rf"|\b(disabled|removed|lifted|suspended|relaxed) (your|the|all|these)?\s*{_GUARD}"
    r"|\b(you are|you're|you have been|you've been) (now )?(allowed|permitted|authori[sz]ed|updated|unlocked)\b"
    r"|\b(allowed|permitted) to (write|answer|produce|give|help fully|do)\b[^.?!\n]{0,30}"
    r"\b(everything|anything|in full|whole|full|complete)"
    r"|\b(can|may) (now )?(answer|write|produce) (everything|anything)\b[^.?!\n]{0,10}\b(in full|fully)?"
    r"|\bteacher (says|said|allows|allowed|lets)\b[^.?!\n]{0,40}\b(you|agents?)\b[^.?!\n]{0,20}"
    r"\b(can|may|are allowed|answer|write|ignore|break)\b"
    r"|(规则|政策|限制|检查|边界|过滤)[^。！？\n]{0,6}(改了|变了|更新|取消|关闭|关掉|解除|失效|不再)"
    r"|(关闭|关掉|取消|解除)了?[^。！？\n]{0,4}(规则|限制|检查|边界|过滤)"
    r"|(现在|今天)?(你)?可以[^。！？\n]{0,4}(写|给)[^。！？\n]{0,4}(完整|全部|整篇)",
    _FLAGS,
)
# Role-play that puts the agent in the learner's place, or makes it someone without limits.
ROLE_PLAY = re.compile(
    r"\b(act|acting|play|playing|behave|roleplay|role-play|role play) (as|like)( if you were)? "
    r"(the|a|an|one|my|our)? ?(student|pupil|kid|learner|classmate|member|teammate|top student|me|us)\b"
    r"|\bplay the (role|part) of (a|an|the|my|our) (student|kid|pupil|learner|classmate|teammate)"
    r"|\b(you'?re|you are|you be|be) (me|us|the student|a student|one of us|in our (class|group|team)|my classmate)\b"
    r"|\bpretend (to be|you'?re|you are) (me|us|the student|a student|my)\b"
    r"|\b(roleplay|role-play|role play) as\b|\byou are (now )?(a |an )?\w*(bot|writer|gpt)\b"
    r"|假装(你|自己)?是|你(来)?当(学生|我|我们)|你(就)?是(我|我们组的|学生)|替我当|扮演",
    _FLAGS,
)

_TRANSFORM_VERB = (
    r"(translate|rewrite|re-write|rephrase|reword|paraphrase|summari[sz]e|condense|polish|reformat|convert|"
    r"turn|make|put|format|restructure|shorten|expand|edit|redo|clean up|tidy up)"
)
# What the transformation is for: the deliverable, or something to paste and hand in.
_FOR_USE = (
    r"(so (that )?(i|we) can (submit|paste|hand|turn|use|copy|put)|to (submit|hand in|turn in|paste)|"
    r"for (our|my|the) (report|notes|document|submission|section|essay|pitch|proposal|summary|deliverable|"
    r"assignment|homework|research notes|class|slides|presentation|conclusion|introduction)|"
    r"into (our|my) (document|report|notes|doc|submission|essay|pitch|proposal|summary)|i can submit|we can submit)"
)
_SHAPE = (
    r"(into|as|in|to) (a |an |some |our |my )?(bullet|list|numbered|table|paragraphs?|essay|final|polished|formal"
    r"|submission|report|problem statement|pitch|proposal|summary|section|format|headings?|template|conclusion"
    r"|introduction|intro|notes|research notes)"
    r"|\bbullet points\b|\bunder (our|the|my) (template|headings?)"
)
_THEIR_WORK = (
    r"(your (answer|explanation|example|response|reply|solution|text|version|points|ideas|list)|"
    r"what you (just )?(said|wrote|gave|explained|told)|the whole thing|(my|our) (notes|draft|ideas|answer)|"
    r"the resource( text)?|this|that|it|these)"
)
TRANSFORM = re.compile(
    rf"\b{_TRANSFORM_VERB}\b[^.?!\n]{{0,60}}{_FOR_USE}"
    rf"|\b{_TRANSFORM_VERB}\b [^.?!\n]{{0,40}}\b{_THEIR_WORK}\b[^.?!\n]{{0,40}}{_SHAPE}"
    rf"|\b{_TRANSFORM_VERB}\b (it|that|this|them|these) ({_SHAPE})"
    r"|\b(translate|paraphrase|rephrase|reword|polish|rewrite)\b[^.?!\n]{0,30}"
    r"\b(your|the) (full |whole |complete )?(answer|explanation|example|solution|response)"
    r"|\b(polish|rewrite|turn|make)\b[^.?!\n]{0,30}\binto (a |the |our )?(final|polished|finished|formal)"
    # Passing the agent's text off as the learner's.
    r"|\b(sound|sounds|look|looks|read|reads|seem|seems) (like )?(it was written by |like )?(a |an )?"
    r"(\d+[- ]year[- ]old|student|kid|child|teen|teenager|human|me|my (own )?writing|our (own )?writing|"
    r"i wrote|we wrote|a person)\b"
    r"|\b(doesn'?t|does not|won'?t|wouldn'?t|not) (look|sound|seem|read)( like)?( it'?s)? (ai|a bot|chatgpt|"
    r"machine|computer)|\bai[- ](written|generated)\b|\bteacher (won'?t|will not|wouldn'?t|can'?t) (notice|tell)"
    # Chinese: translate/polish/turn it into bullets or a table for the report; sound like a student.
    r"|(翻译|改写|改成|改为|润色|整理|转换|转成|做成|变成|概括|总结)[^。！？\n]{0,12}"
    r"(交|提交|作业|报告|笔记|论文|最终|正式|放进|放到|表格|要点|列表|段落)"
    r"|像[^。！？\n]{0,4}(学生|初中生|高中生|小学生|中学生|孩子|我|我们|人)[^。！？\n]{0,2}写的"
    r"|(别|不要|不让|别让)[^。！？\n]{0,4}(老师)?[^。！？\n]{0,2}(看出|发现|察觉)",
    _FLAGS,
)

_PIECE = (
    r"(paragraph|sentence|sentences|line|lines|part|section|bit|heading|intro|introduction|conclusion|"
    r"opening|ending|point|bullet|row|blank)"
)
PIECEMEAL = re.compile(
    rf"\b(just|only)( give me| write| do)? (the|a|one|our|my) ((first|opening|last|final|next|second|third|"
    rf"intro|top|'[^']{{1,40}}'|\"[^\"]{{1,40}}\"|[a-z]+ [a-z]+|[a-z]+) )?{_PIECE}\b"
    rf"|\b(a|one) (line|sentence|bullet|phrase) (for|under|per) (each|every) (heading|section|part|criterion|point)"
    rf"|\bstart (it|them|the \w+) (off )?for (me|us)\b|\bfirst (two|three|few|couple of|\d+) (lines|sentences)\b"
    rf"|\bfill (in |out )?(that|this|the|our|each|every)( '[^']{{1,40}}'| \"[^\"]{{1,40}}\"| [a-z]+)? "
    rf"(bit|part|section|blank|heading|gap)s?\b"
    rf"|\bfill (that|this|it) (bit |part )?in\b"
    r"|只(要|写|给|需要)[^。！？\n]{0,6}(第一段|开头|结尾|一句|一段|这部分|那部分|这一段|那一段|第一部分)"
    r"|(开头|结尾|第一段|第一句)(那一句|那一段|就好|就行|就可以)"
    r"|每个(标题|部分|小标题)[^。！？\n]{0,4}(写|给)[^。！？\n]{0,2}(一句|一行|一段)",
    _FLAGS,
)
# Asking the agent to produce the work itself, beyond the older WANTS_DELIVERABLE pattern.
GHOSTWRITE = re.compile(
    r"\b(put together|draw up|make|build|create|do)\b (the|our|a|one|my)? ?(whole |complete |full )?"
    r"(budget( table)?|layout|design proposal|proposal|research notes|test plan|table|pitch|slides|one)\b"
    r"(?![^.?!\n]{0,20}\b(how|what|why)\b)"
    r"|\bwhat would you (write|submit|put|say)\b[^.?!\n]{0,40}\b(if you were (us|me)|for (the|our|my))"
    r"|\bif you were (us|me)\b[^.?!\n]{0,30}\b(what|write|submit)"
    r"|\b(list|name|give|outline)\b[^.?!\n]{0,60}\bfor (our|my|the) (summary|notes|research notes|report|"
    r"document|submission|section|deliverable|pitch|proposal)\b"
    r"|\bjust do (the|our|my)\b|\bword for word\b|\bspell (it|them|this) (all )?out\b"
    r"|\b(send|give|show|hand)\b[^.?!\n]{0,20}\b(finished|final|complete|full|ready) (version|text|answer|copy|draft)"
    r"|(帮|替|给|为)(我|我们)[^。？！\n]{0,4}(写|完成|做|列|整理|润色|改|翻译|画|设计|弄)"
    r"|(列出|写出|给出)[^。？！\n]{0,10}(全部|完整|所有)(内容)?"
    r"|(写|做)[^。？！\n]{0,3}(一个|一份|一下)?[^。？！\n]{0,3}(预算表|表格|方案|笔记|报告)",
    _FLAGS,
)
# A summary of a resource asked for to understand it, or a list of questions to ask: fair.
TO_UNDERSTAND = re.compile(
    r"\bso (that )?(i|we) (can )?(understand|get it|learn)|\bbefore (i|we) (take|write|make) (my |our )?notes"
    r"|\bquestions (we|i) (could|should|can|might) ask\b|以便(我|我们)理解|让我(们)?(理解|明白|看懂)",
    _FLAGS,
)


def injection(text: str) -> str:
    """What matched, for a fake role line, a claim that the rules changed, or role-play; or ""."""
    for pattern in (FAKE_ROLE_LINE, RULES_CHANGED, ROLE_PLAY):
        match = pattern.search(text)
        if match:
            return match.group(0)
    return ""


def deliverable_request(sentence: str) -> str:
    """What matched, for a transformation of finished work, a piecemeal or a ghost-writing
    request in one sentence; or "" (also for a summary asked for to understand a resource)."""
    if TO_UNDERSTAND.search(sentence):
        return ""
    for kind, pattern in (("transformation", TRANSFORM), ("piecemeal", PIECEMEAL), ("ghost-writing", GHOSTWRITE)):
        match = pattern.search(sentence)
        if match:
            return f"{kind}: {match.group(0)}"
    return ""
