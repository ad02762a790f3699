"""Chapter 6 under the lecture profile (#16): the configurations' training (14 runs of 15 epochs) and
the calibration measured on their networks replayed through store.measured; a glued sentence says
which profile made the numbers. Run: python dev/lecture_edits/ch06.py chapters/06_deeper_cnn.ipynb"""
from edit import cells, edit, find, save

# --- which profile made the numbers
edit("# A deeper CNN\n", "are over-confident.",
     "are over-confident.\n\nThe numbers on this page were computed under {glue:text}`profile_ch06` (the provenance\n"
     "cell at the end says on which machine and when).", kind="markdown")
edit('print(f"profile {profile().name}', 'print(f"profile {profile().name}: {len(data.train):,} training and {len(data.test):,} test images")',
     'print(f"profile {profile().name}: {len(data.train):,} training and {len(data.test):,} test images")\n'
     'book.glue_text("profile_ch06", profile().about)  # which profile made the numbers on this page')

# --- training: replayed under lecture
edit("main = run_seeds(DEEPCNN", '''main = run_seeds(DEEPCNN, seeds=3, data=data, workers="auto")
twins = run_seeds([JETIR_CASE2, JETIR_CASE6], seeds=3, data=data, workers="auto")  # the conclusion's case 2 and case 6
others = run_seeds([c for c in JETIR_CONFIGS if c.name not in (DEEPCNN.name, JETIR_CASE2.name)], seeds=1, data=data,
                   workers="auto")
models = main.models | twins.models | others.models
final = pd.concat([main.final(), twins.final(), others.final()])
# The tables the figures below are drawn from, kept in the results store (python -m mnist_lib figure)
store.save("deepcnn_final", final, "06_deeper_cnn")
store.save("deepcnn_epochs", pd.concat([main.epochs, twins.epochs, others.epochs]), "06_deeper_cnn")
''', '''models = {}  # the trained networks by (config, seed), for the calibration below (none where lecture replays)


def train_configurations() -> tuple[pd.DataFrame, pd.DataFrame]:
    main = run_seeds(DEEPCNN, seeds=3, data=data, workers="auto")
    twins = run_seeds([JETIR_CASE2, JETIR_CASE6], seeds=3, data=data, workers="auto")  # the conclusion's case 2 and 6
    others = run_seeds([c for c in JETIR_CONFIGS if c.name not in (DEEPCNN.name, JETIR_CASE2.name)], seeds=1, data=data,
                       workers="auto")
    models.update(main.models | twins.models | others.models)
    return (pd.concat([main.final(), twins.final(), others.final()]),
            pd.concat([main.epochs, twins.epochs, others.epochs]))


# The tables the figures below are drawn from, kept in the results store (python -m mnist_lib figure)
final, epochs = store.measured(("deepcnn_final", "deepcnn_epochs"), "06_deeper_cnn", train_configurations)
''')
edit("def train_configurations()", 'best = main.summary("test_acc")',
     'best = final.loc[final["config"] == DEEPCNN.name, "test_acc"].agg(["mean", "std", "count"]).to_frame().T')
edit('glue("deepcnn_seconds_per_run"', 'float(main.final()["run_seconds"].mean())',
     'float(final.loc[final["config"] == DEEPCNN.name, "run_seconds"].mean())')

# --- calibration and the reliability diagram: measured on the trained networks, replayed under lecture
edit("def expected_calibration_error(", '''labels = data.test.labels
rows, probs_of = [], {}
for config in configs:
    seed = min(s for c, s in models if c == config.name)
    probs = predict_proba(models[config.name, seed], data.test.images)  # evaluation mode: dropout off
    probs_of[config.name] = probs
    confidence, predicted = probs.max(1)
    wrong = predicted != labels
    rows.append({"config": config.name, "seed": seed, "test_acc": 1 - wrong.float().mean().item(),
                 "mean confidence": confidence.mean().item(),
                 "confidence when wrong": confidence[wrong].mean().item() if wrong.any() else float("nan"),
                 "confidence - accuracy": confidence.mean().item() - (1 - wrong.float().mean().item()),
                 "ECE": expected_calibration_error(probs, labels)})
calibration = pd.DataFrame(rows).set_index("config")
''', '''labels = data.test.labels
probs_of = {}  # each configuration's test probabilities (first seed), where this run trained it


def calibrate() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for config in configs:
        seed = min(s for c, s in models if c == config.name)
        probs = predict_proba(models[config.name, seed], data.test.images)  # evaluation mode: dropout off
        probs_of[config.name] = probs
        confidence, predicted = probs.max(1)
        wrong = predicted != labels
        rows.append({"config": config.name, "seed": seed, "test_acc": 1 - wrong.float().mean().item(),
                     "mean confidence": confidence.mean().item(),
                     "confidence when wrong": confidence[wrong].mean().item() if wrong.any() else float("nan"),
                     "confidence - accuracy": confidence.mean().item() - (1 - wrong.float().mean().item()),
                     "ECE": expected_calibration_error(probs, labels)})
    # The reliability diagram's bins, for the networks without and with both dropouts
    edges, bins = torch.linspace(0, 1, ECE_BINS + 1), []
    for key, label in (("none", "no dropout"), ("main", "two dropouts")):
        confidence, predicted = probs_of[names[key]].max(1)
        correct = (predicted == labels).float()
        bin_of = ((confidence * ECE_BINS).ceil().long() - 1).clamp(0, ECE_BINS - 1)
        bins += [{"config": names[key], "label": label, "bin_left": float(edges[m]), "width": 1 / ECE_BINS,
                  "count": int((bin_of == m).sum()), "accuracy": correct[bin_of == m].mean().item(),
                  "ECE": next(r["ECE"] for r in rows if r["config"] == names[key])}
                 for m in range(ECE_BINS) if (bin_of == m).any()]
    return pd.DataFrame(rows), pd.DataFrame(bins)


calibration, reliability = store.measured(("deepcnn_calibration", "deepcnn_reliability"), "06_deeper_cnn", calibrate)
calibration = calibration.set_index("config")
''')
c = cells[find('fig = figures.draw("deepcnn-reliability")')]
assert "probs_of[names[key]]" in c.source
c.source = 'fig = figures.draw("deepcnn-reliability")'

# --- exercises: the histories and probabilities by their new names
edit("**Exercise 3.**", '''The per-epoch history is already in `others.epochs`:

```python
nodrop = others.epochs[others.epochs["config"] == JETIR_CONFIGS[0].name]''', '''The per-epoch history is already in `epochs`:

```python
nodrop = epochs[epochs["config"] == JETIR_CONFIGS[0].name]''', kind="markdown")
edit("**Exercise 4.**", "The probabilities are already in `probs_of`:",
     "The probabilities are already in `probs_of` (after a full-profile run: the lecture profile replays the\n"
     "calibration without the networks):", kind="markdown")

save("edited for the lecture profile")
