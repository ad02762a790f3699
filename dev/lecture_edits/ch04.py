"""Chapter 4 under the lecture profile (#16): the CUHK twin and the training-set-size sweep replayed
through store.measured; LeNet-5 and the ANU NN twin re-measured (1 seed, 3 epochs); a glued sentence
says which profile made the numbers. Run: python dev/lecture_edits/ch04.py chapters/04_lenet5.ipynb"""
from edit import edit, save

# --- which profile made the numbers
edit("# LeNet-5\n", "and looks at the errors it still makes.",
     "and looks at the errors it still makes.\n\nThe numbers on this page were computed under "
     "{glue:text}`profile_ch04` (the provenance\ncell at the end says on which machine and when).", kind="markdown")
edit('glue("n_train_ch4", len(data.train), display=False)', 'glue("n_train_ch4", len(data.train), display=False)',
     'glue("n_train_ch4", len(data.train), display=False)\n'
     'book.glue_text("profile_ch04", profile().about)  # which profile made the numbers on this page')

# --- the CUHK twin: replayed under lecture (2 setups x 3 seeds x 20 epochs)
edit("cuhk = run_seeds(", '''cuhk = run_seeds([LENET5_CUHK_AVG, LENET5_CUHK], seeds=3, data=split)
final = cuhk.final()
twin, variant = final[final["config"] == LENET5_CUHK_AVG.name], final[final["config"] == LENET5_CUHK.name]
train_seconds = float(cuhk.epochs[cuhk.epochs["config"] == LENET5_CUHK_AVG.name].groupby("seed")["seconds"].sum().mean())''',
     '''

def train_cuhk() -> tuple[pd.DataFrame, pd.DataFrame]:
    cuhk = run_seeds([LENET5_CUHK_AVG, LENET5_CUHK], seeds=3, data=split)
    return cuhk.final(), cuhk.epochs


final, cuhk_epochs = store.measured(("cuhk_final", "cuhk_epochs"), "04_lenet5", train_cuhk)
twin, variant = final[final["config"] == LENET5_CUHK_AVG.name], final[final["config"] == LENET5_CUHK.name]
train_seconds = float(cuhk_epochs[cuhk_epochs["config"] == LENET5_CUHK_AVG.name].groupby("seed")["seconds"].sum().mean())''')
edit("def train_cuhk()", 'cuhk.summary("val_acc")',
     'final.groupby("config", sort=False)["val_acc"].agg(["mean", "std", "count"])')
edit('store.save("cuhk_epochs", cuhk.epochs, "04_lenet5")', 'store.save("cuhk_epochs", cuhk.epochs, "04_lenet5")\n', "")

# --- the training-set-size sweep: replayed under lecture (7 sizes x 3 seeds)
edit("sweep = train_size_sweep(", '''started = time.perf_counter()
sweep = train_size_sweep(LENET5.with_(epochs=5), sizes, seeds=3, data=data)
sweep_seconds = time.perf_counter() - started
glue("sweep_minutes", sweep_seconds / 60, display=False)''', '''

def size_sweep() -> pd.DataFrame:
    started = time.perf_counter()
    sweep = train_size_sweep(LENET5.with_(epochs=5), sizes, seeds=3, data=data)
    return sweep.assign(sweep_seconds=time.perf_counter() - started)  # the whole sweep's wall time, on every row


sweep = store.measured("lenet5_size_sweep", "04_lenet5", size_sweep)
glue("sweep_minutes", float(sweep["sweep_seconds"].iloc[0]) / 60, display=False)''')
edit('store.save("lenet5_size_sweep", sweep, "04_lenet5")', 'store.save("lenet5_size_sweep", sweep, "04_lenet5")\n', "")

save("edited for the lecture profile")
