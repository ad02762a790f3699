"""The instructor's page once chapter 7 has its lecture design (run after land_ch07.sh, then re-execute
instructor.ipynb): python dev/pending/instructor_ch07.py instructor.ipynb"""
import sys

sys.path.insert(0, "dev/lecture_edits")
from edit import edit, save  # noqa: E402

edit("# Teaching with this book", "activation and learning-rate sweep). `make lecture`",
     "activation and learning-rate sweep; every training of chapter 7, whose committee is then the\n"
     "  one shipped with the library, `load_model(\"bncnn_committee\")`, evaluated live). `make lecture`",
     kind="markdown")
edit("# Teaching with this book", "Chapters 4, 6 and 7 do not have their lecture\n  design yet",
     "Chapters 4 and 6 do not have their lecture\n  design yet", kind="markdown")
edit("## Lecture 7: towards 99.7%", "**Live.** The shipped committee,",
     "**Live.** The whole chapter under the lecture profile: it trains nothing, replays every\n"
     "stored training table of the full run and evaluates the shipped committee (it says so in\n"
     "its output). Or, by hand, the shipped committee,", kind="markdown")
edit("## Lecture 7: towards 99.7%", "- Reading `train_acc` below the test accuracy as a bug: the training digits are distorted.",
     "- Reading `train_acc` below the test accuracy as a bug: it is a running mean in training\n"
     "  mode (dropout on, batch statistics) over distorted digits while the weights still change.\n"
     "  The chapter measures the finished network in evaluation mode on the same training digits,\n"
     "  as they are and distorted once, for the fair comparison.", kind="markdown")
save("the instructor's page: chapter 7's lecture design")
