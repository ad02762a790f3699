"""Chapter 7 on a machine without bfloat16 arithmetic: its recipe (amp=True) trains in float32 there (fit warns),
so the chapter says which arithmetic its run used and leaves out the float32 variant of the ablation, which would
repeat the recipe. Applied to the chapter of f4f1b71 + d9fe74d (git revert 414cbc1) with ch07_prose.py."""
from edit import edit, save

edit("from mnist_lib.profiles import profile", "from mnist_lib.profiles import profile\n",
     "from mnist_lib.device import choose_device, has_bfloat16\nfrom mnist_lib.profiles import profile\n")
edit("from mnist_lib.profiles import profile", "nets = {}  #",
     "# Where the device has no bfloat16 arithmetic, fit trains this chapter's amp=True recipe in float32 (and warns)\n"
     "amp_here = has_bfloat16(choose_device())\nnets = {}  #")
edit("def train_committee()", "return trained.final().assign(workers=trained.workers), trained.epochs",
     "return trained.final().assign(workers=trained.workers, bfloat16=amp_here), trained.epochs")
edit("def train_committee()", 'glue("committee_workers", int(runs["workers"].iloc[0]), display=False)\n',
     'glue("committee_workers", int(runs["workers"].iloc[0]), display=False)\n'
     '# The arithmetic of the run that trained them (older stored runs did not record it: they used bfloat16)\n'
     'trained_in_bf16 = bool(runs["bfloat16"].iloc[0]) if "bfloat16" in runs else True\n'
     'book.glue_text("amp_this_run", "The machine that trained this chapter\'s networks computes in bfloat16, so "\n'
     '               "they trained that way." if trained_in_bf16 else "The machine that trained this chapter\'s "\n'
     '               "networks has no bfloat16 arithmetic (its processor only emulates it, several times slower than "\n'
     '               "float32), so there `fit` trained in float32 instead and said so in a warning: every network "\n'
     '               "of this chapter\'s run is a float32 run.")\n')
edit("**Mixed precision** (`amp=True`", "for a trained network).\n- **Channels-last**",
     "for a trained network). {glue:text}`amp_this_run`\n- **Channels-last**", kind="markdown")
edit("Mixed precision rounds", "under bfloat16 autocast, as in training;",
     "under bfloat16 autocast, as in training on hardware with\nbfloat16;", kind="markdown")
edit("p16 = net(x)", 'glue("amp_digits", len(x), display=False)\n',
     'glue("amp_digits", len(x), display=False)\n'
     'book.glue_text("amp_cost_clause", f"the ablation below measures whether that costs accuracy after "\n'
     '               f"{int(committee_epochs[\'epoch\'].max())} epochs" if trained_in_bf16 else "whether that costs "\n'
     '               "accuracy is not measured here, since this run trained the recipe in float32 (on a machine with "\n'
     '               "bfloat16 arithmetic the ablation below adds a float32 variant)")\n')
edit("Rounding to bfloat16 moves", "drift apart; the ablation below measures\nwhether that costs accuracy after "
     "{glue:text}`bncnn_epochs` epochs.", "drift apart; {glue:text}`amp_cost_clause`.", kind="markdown")
edit("Rounding to bfloat16 moves", "the output), and in float32. Each variant",
     "the output){glue:text}`ablation_fp32_item`. Each variant", kind="markdown")
edit("ABLATION = {", "ablation_seeds = profile().seeds(2)\n",
     'if not amp_here:  # the recipe itself trains in float32 here: that variant would repeat it\n'
     '    del ABLATION["fp32"]\nablation_seeds = profile().seeds(2)\n')
edit("full_mean, full_std", "rows, verdicts = [], {}\nfor key, config in ABLATION.items():\n",
     'measured = {k: c for k, c in ABLATION.items() if c.name in set(ablation_runs["variant"])}  # as stored\n'
     "rows, verdicts = [], {}\nfor key, config in measured.items():\n")
edit("full_mean, full_std", "    found = [ABLATION[k].name", "    found = [measured[k].name")
edit("full_mean, full_std", 'book.glue_text("ablation_better", names("gain"))\n',
     'book.glue_text("ablation_better", names("gain"))\n'
     'book.glue_text("ablation_fp32_item", ", and in float32" if "fp32" in measured else\n'
     '               " (a float32 variant is left out: this run trained the recipe itself in float32)")\n'
     'book.glue_text("ablation_fp32_tail", f"; in float32 {rows[-1][\'test accuracy (mean)\']:.2%}" '
     'if "fp32" in measured else "")\n')
edit("The\nyardstick is the full recipe", "with its head {glue:text}`ablation_head_acc:.2%`; in\nfloat32 "
     "{glue:text}`ablation_fp32_acc:.2%`.", "with its head {glue:text}`ablation_head_acc:.2%`"
     "{glue:text}`ablation_fp32_tail`.", kind="markdown")
save("chapter 7: the arithmetic of its run said, the float32 variant only where the recipe used bfloat16")
