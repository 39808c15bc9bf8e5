"""Short assistant questions in pairs, by family: re-phrasings to serve, look-alikes never to serve.

Made from templates written for memollm's own tests (no public data set): each family pairs
an original question with a variant. The easy families (case and punctuation, fillers and
openers, synonym verbs) ask the same thing and should be served; the look-alike families
(an opposite anywhere, a number, an entity, a direction, a negation) ask something else and
must never be. ``pairs()`` gives (family, original, variant, same) rows, deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

EASY = ("case-punctuation", "filler-opener", "synonym-verb", "zh-same")
LOOKALIKE = ("opposite", "number", "entity", "direction", "negation", "zh-lookalike")

_QUESTIONS = [
    "What is the population of Canada?", "How many ounces are in a pound?", "Who wrote Pride and Prejudice?",
    "How do I rename a folder on Linux?", "What is the boiling point of water in Fahrenheit?",
    "How do I reset my router?", "What does HTTP stand for?", "How do I print a list in Python?",
    "Why is the sky blue?", "How do I center a div in CSS?", "What is the tallest mountain in Africa?",
    "How long should I boil an egg?", "What is a mutex?", "How do I check my Python version?",
    "What time zone is Tokyo in?", "How do I merge two dictionaries in Python?",
    "What is the difference between TCP and UDP?", "How do I clear the cache in Chrome?",
    "Where is the Louvre museum?", "How do I find the length of a string in JavaScript?",
]  # fmt: skip
_CASES = [str.lower, str.upper, lambda q: q.rstrip("?"), lambda q: q.lower().rstrip("?") + "??",
          lambda q: "  " + q.replace(" ", "  ") + " ", lambda q: q.rstrip("?").lower() + "."]  # fmt: skip
_OPENERS = [
    ("How do I {x}?", "How can I {x}?"),
    ("How do I {x}?", "how do you {x}"),
    ("How do I {x}?", "Steps to {x}?"),
    ("How can I {x}?", "Quick question: how do I {x}?"),
    ("How do I {x}?", "Hey, how can I {x}? Thanks!"),
    ("How do I {x}?", "Can you tell me how to {x}, please?"),
    ("How do I {x}?", "how would I {x} please"),
]  # fmt: skip
_TASKS = [
    "rename a folder on Linux", "reset a wireless router", "check the Python version",
    "sort a list in Python",
    "undo the last commit in git", "convert a PDF to Word", "take a screenshot on a Mac",
    "find the IP address of my laptop", "join two strings in Java", "block a number on Android",
]  # fmt: skip
_SYNONYMS = [
    ("How do I turn on {f}?", "How can I enable {f}?"),
    ("How do I switch {f} on?", "How do I turn {f} on?"),
    ("turn on {f}", "please switch on {f}"),
    ("How do I disable {f}?", "How do I turn off {f}?"),
    ("switch off {f}", "turn {f} off"),
]  # fmt: skip
_FEATURES = ["location services", "the spell checker", "battery saver", "subtitles", "autocorrect",
             "the firewall", "Wi-Fi calling", "night light", "airplane mode", "auto-save"]  # fmt: skip
_VERB_SYNONYMS = [
    ("How do I delete my browsing history?", "How do I remove my browsing history?"),
    ("How do I make a pivot table in Sheets?", "How do I create a pivot table in Sheets?"),
    ("How do I create a virtual environment?", "How do I make a virtual environment?"),
    ("How do I remove a user from a group in Linux?", "How do I delete a user from a group in Linux?"),
    ("How do I fix a leaking tap?", "How do I repair a leaking tap?"),
]  # fmt: skip
_OPPOSITES = [
    ("enable {f}", "disable {f}"),
    ("switch {f} on", "turn {f} off"),
    ("put {f} on", "set {f} to off"),
    ("How do I turn {f} off?", "How can I switch {f} on?"),
    ("Why won't {f} turn on?", "Why won't {f} turn off?"),
]  # fmt: skip
_OPPOSITE_PAIRS = [
    ("How do I zoom in on a PDF?", "How do I zoom out on a PDF?"),
    ("Sort my files by size in ascending order", "Sort my files by size in descending order"),
    ("What is the hottest planet?", "What is the coldest planet?"),
    ("How do I mute a call in Teams?", "How do I unmute a call in Teams?"),
    ("How do I upload photos to iCloud?", "How do I download photos from iCloud?"),
    ("How do I maximize a window on Windows?", "How do I minimize a window on Windows?"),
    ("lock the screen on my phone", "unlock the screen on my phone"),
    ("What is the longest river in Europe?", "What is the shortest river in Europe?"),
    ("How do I increase the font size in Word?", "How do I decrease the font size in Word?"),
    ("How do I install Docker on Windows?", "How do I uninstall Docker on Windows?"),
    ("How do I encrypt a zip file?", "How do I decrypt a zip file?"),
    ("How do I log in to Gmail?", "How do I log out of Gmail?"),
]  # fmt: skip
_NUMBERS = [
    ("What is 15% of 240?", "What is 15% of 420?"),
    ("Convert 3 miles to kilometers", "Convert 5 miles to kilometers"),
    ("What is 12 times 14?", "What is 12 times 15?"),
    ("How many days are in 3 weeks?", "How many days are in 4 weeks?"),
    ("What year did World War 1 end?", "What year did World War 2 end?"),
    ("Is 91 a prime number?", "Is 97 a prime number?"),
    ("What is the square root of 144?", "What is the square root of 169?"),
    ("How much is 20 dollars in euros?", "How much is 200 dollars in euros?"),
    ("Set a timer for 10 minutes", "Set a timer for 15 minutes"),
    ("What is 2 to the power of 10?", "What is 2 to the power of 12?"),
]  # fmt: skip
_ENTITIES = [
    ("What is the capital of Peru?", "What is the capital of Chile?"),
    ("How do I install Node on Ubuntu?", "How do I install Node on Fedora?"),
    ("Who is the CEO of Microsoft?", "Who is the CEO of Google?"),
    ("What is the weather like in Lisbon in May?", "What is the weather like in Porto in May?"),
    ("How do I read a CSV file in Rust?", "How do I read a CSV file in Go?"),
    ("When was Mozart born?", "When was Beethoven born?"),
    ("How tall is the Eiffel Tower?", "How tall is the Space Needle?"),
    ("What language is spoken in Brazil?", "What language is spoken in Argentina?"),
    ("How do I export a table from PostgreSQL?", "How do I export a table from MySQL?"),
    ("What does the os.path module do?", "What does the os.walk function do?"),
]  # fmt: skip
_DIRECTIONS = [
    ("Convert Celsius to Kelvin", "Convert Kelvin to Celsius"),
    ("How long is the train from Paris to Madrid?", "How long is the train from Madrid to Paris?"),
    ("Translate this from English to Spanish", "Translate this from Spanish to English"),
    ("How do I convert a string to an int in Java?", "How do I convert an int to a string in Java?"),
    ("How far is Denver from Chicago?", "How far is Chicago from Denver?"),
    ("Convert pounds to kilograms", "Convert kilograms to pounds"),
    ("How do I migrate from MySQL to PostgreSQL?", "How do I migrate from PostgreSQL to MySQL?"),
    ("What is the exchange rate from yen to dollars?", "What is the exchange rate from dollars to yen?"),
]  # fmt: skip
_NEGATIONS = [
    ("Which foods are safe for dogs?", "Which foods are not safe for dogs?"),
    ("Why does my laptop charge?", "Why doesn't my laptop charge?"),
    ("Should I water a cactus in winter?", "Should I not water a cactus in winter?"),
    ("What can I eat on a keto diet?", "What can't I eat on a keto diet?"),
    ("Which plants need direct sunlight?", "Which plants do not need direct sunlight?"),
    ("Is it healthy to skip breakfast?", "Is it not healthy to skip breakfast?"),
    ("Why is my phone charging?", "Why is my phone not charging?"),
    ("Does coffee dehydrate you?", "Does coffee never dehydrate you?"),
]  # fmt: skip


_ZH_SAME = [
    ("什么是 Python 的装饰器?", "什么是Python的装饰器？"),
    ("请问怎么重置路由器", "怎么重置路由器"),
    ("如何清除浏览器缓存", "怎么清除浏览器缓存"),
    ("为什么天空是蓝色的", "为啥天空是蓝色的"),
    ("怎样学习Python", "如何学习 Python？"),
    ("北京今天天气怎么样", "请问北京今天天气怎么样？"),
]  # fmt: skip
_ZH_LOOKALIKES = [
    ("怎么打开蓝牙", "怎么关闭蓝牙"),
    ("如何上传照片到云盘", "如何从云盘下载照片"),
    ("我不想取消订单", "我想取消订单"),
    ("三加五等于几", "三加六等于几"),
    ("100美元是多少人民币", "200美元是多少人民币"),
    ("怎么提高手机音量", "怎么降低手机音量"),
    ("没有收到验证码怎么办", "收到验证码怎么办"),
    ("如何开启夜间模式", "如何关闭夜间模式"),
]  # fmt: skip


def pairs(seed: int = 7) -> Iterator[tuple[str, str, str, bool]]:
    """(family, original, variant, same) for every pair of every family."""
    rng = random.Random(seed)
    for question in _QUESTIONS:
        yield "case-punctuation", question, rng.choice(_CASES)(question), True
    for task in _TASKS:
        for original, variant in rng.sample(_OPENERS, 2):
            yield "filler-opener", original.format(x=task), variant.format(x=task), True
    for feature in _FEATURES:
        original, variant = rng.choice(_SYNONYMS)
        yield "synonym-verb", original.format(f=feature), variant.format(f=feature), True
    for original, variant in _VERB_SYNONYMS:
        yield "synonym-verb", original, variant, True
    for feature in _FEATURES:
        original, variant = rng.choice(_OPPOSITES)
        yield "opposite", original.format(f=feature), variant.format(f=feature), False
    for original, variant in _OPPOSITE_PAIRS:
        yield "opposite", original, variant, False
    for original, variant in _ZH_SAME:
        yield "zh-same", original, variant, True
    for family, rows in (("number", _NUMBERS), ("entity", _ENTITIES), ("direction", _DIRECTIONS),
                         ("negation", _NEGATIONS), ("zh-lookalike", _ZH_LOOKALIKES)):  # fmt: skip
        for original, variant in rows:
            yield family, original, variant, False
