"""Chapter 7's prose, for after its full run (markdown only). The chapter's correctness pass (f4f1b71) and
lecture design (d9fe74d) wait in main's history: `git revert 414cbc1` brings them back. Their full run needs
a CPU with bfloat16 arithmetic (about 135 minutes) or a GPU: on an AVX2-only CPU its bfloat16 recipe ran
about 8x slower than float32 (session 10). After the run: python dev/lecture_edits/ch07_prose.py
chapters/07_beyond.ipynb, then check by eye, against the new outputs, the robustness paragraph ("from 4
pixels on ... every network fails more often"), the summary's "both hold up far better" and "mostly fail on
the same digits", and the description of particular digits under the last-errors figure."""
from edit import edit, save

edit("**Exercise 6.**", "the committee of the first 7 long-trained members against this\nchapter's",
     "the committee of the first {glue:text}`ensemble_members` long-trained members against this\nchapter's",
     kind="markdown")
edit("**Exercise 6.**", "a difference of two or three digits is within it.",
     "in this chapter's committee one member more or less moved the count by up to\n"
     "{glue:text}`committee_wobble` digits, so a difference that small is within it.", kind="markdown")
edit("every member's probabilities once", "checks that `Committee` gives the same probabilities, then counts the",
     "checks on the first 1,000 of them that `Committee` gives the same answers and\nprobabilities, then counts the",
     kind="markdown")
edit("*test-time augmentation*, makes the answer", "digit, *test-time augmentation*, makes the answer",
     "digit, *test-time augmentation* (Krizhevsky et al. averaged their network's softmax outputs\n"
     "over ten patches of each test image {cite}`krizhevsky2012`), makes the answer", kind="markdown")
edit("keep one CPU\ncore busier than two", """Networks this small keep one CPU
core busier than two, so on a CPU `workers="auto"` trains several of them side by side,
each in its own process on its own share of the cores (on a GPU, `"auto"` trains them one at a time):""",
     """On a CPU, `workers="auto"` trains several of
them side by side, each in its own process with its own share of the cores (chapter 9 measures
whether that beats training them one after the other; on a GPU, `"auto"` trains them one at a time):""",
     kind="markdown")
edit("The gain is small because the members are alike", "The gain is small because the members are alike: same\n"
     "architecture, same data, same recipe.",
     "The members are alike (same architecture, same data, same\nrecipe), which is probably why the gain is small: "
     "a hypothesis, which exercise 2 tests.", kind="markdown")
save("chapter 7's prose edited after its run")
