# The MNIST Book. `make book` builds the website, `make test` runs every test.
# Both create .venv (Python 3.11) and install what they need on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= full
CH ?= 01
export PYTHONUNBUFFERED := 1

.PHONY: install book serve test unit chapters-smoke book-check browser-deps browser reproduce chapter lab data doctor bench gpu-check clean
.PHONY: figure slides lecture test-lecture
.PHONY: pdf-deps pdf test-pdf metadata

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python 3.11 or newer is needed; run make PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv with everything the book needs

book: $(STAMP)  ## build the website into _build/html from the committed notebooks
	$(BIN)/jupyter-book build . --keep-going
	@echo
	@echo "The book is at $(CURDIR)/_build/html/index.html (open it in a browser, or: make serve)"

serve: ## serve the built book on http://127.0.0.1:8000
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/html 8000

test: unit chapters-smoke book-check browser  ## the whole test suite

unit: $(STAMP)  ## ruff (errors only), then the library unit tests (CPU, small data)
	$(BIN)/ruff check mnist_lib tests
	$(BIN)/python -m pytest tests -q --ignore=tests/browser --ignore=tests/solutions

chapters-smoke: $(STAMP)  ## execute every chapter under the smoke profile and compare checked cells (nbval); then run the solutions' code
	MNIST_PROFILE=smoke MNIST_PROGRESS=0 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -q chapters
	MNIST_PROFILE=smoke MNIST_PROGRESS=0 $(BIN)/python -m pytest -q tests/solutions

book-check: $(STAMP)  ## build the website with warnings as errors (broken references, missing glue)
	$(BIN)/jupyter-book build . --warningiserror --keep-going

browser-deps: $(STAMP)  ## Chromium and chromedriver (Debian packages) for the browser tests, if missing
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	fi
	@$(BIN)/python -c "import selenium" || { echo "error: Selenium is missing from .venv; run make install" >&2; exit 1; }

browser: browser-deps book-check  ## the website in headless Chromium: draw-a-digit page, every page clean; screenshots in _build/screenshots
	MNIST_BROWSER_TESTS=1 $(BIN)/python -m pytest tests/browser -q

pdf-deps: $(STAMP)  ## Chromium and pdftotext (Debian packages) for the PDF, if missing
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/pdftotext ]; then \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium poppler-utils; \
	fi

pdf: pdf-deps  ## the whole book as one PDF, _build/pdf/book.pdf: the single-page website printed by headless Chromium
	$(BIN)/jupyter-book build . --builder singlehtml --path-output _build/pdf --keep-going
	/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run \
	  --no-pdf-header-footer --virtual-time-budget=60000 --run-all-compositor-stages-before-draw \
	  --print-to-pdf=$(CURDIR)/_build/pdf/book.pdf file://$(CURDIR)/_build/pdf/_build/singlehtml/index.html
	@echo "The PDF is at $(CURDIR)/_build/pdf/book.pdf"

test-pdf: pdf  ## make pdf, then check it: page count, every chapter's title in its text (slow: not in make test)
	MNIST_PDF_TESTS=1 $(BIN)/python -m pytest tests/test_publish.py -q -k pdf

metadata: $(STAMP)  ## copy author, repository and year from pyproject.toml's [tool.mnist_book] wherever they are repeated
	$(BIN)/python tests/book_metadata.py

reproduce: $(STAMP)  ## re-execute every chapter in place (PROFILE=full by default, or smoke); times into bench/$(PROFILE).json
	$(BIN)/python tests/run_chapters.py --profile $(PROFILE)

chapter: $(STAMP)  ## re-execute one chapter in place: make chapter CH=02 [PROFILE=smoke]; its time into bench/$(PROFILE).json
	$(BIN)/python tests/run_chapters.py --profile $(PROFILE) $(CH)

lecture: $(STAMP)  ## execute every chapter under the lecture profile into _build/lecture (the book keeps its outputs); times into bench/lecture.json
	$(BIN)/python tests/run_chapters.py --profile lecture --out _build/lecture $(CHAPTERS)

test-lecture: lecture  ## make lecture, then check its headline numbers against the committed full run (not part of make test)
	MNIST_LECTURE_TESTS=1 $(BIN)/python -m pytest -q tests/test_lecture.py

figure: $(STAMP)  ## redraw a figure from results/ in seconds: make figure NAME=lenet5-epochs [OUT=f.svg] [MEASURE=smoke]; no NAME: the list
	$(BIN)/python -m mnist_lib figure $(if $(NAME),$(NAME),--list) $(if $(OUT),--out $(OUT)) $(if $(MEASURE),--profile $(MEASURE))

slides: $(STAMP)  ## a chapter as a reveal.js deck that opens offline: make slides CH=04 (npm fetches reveal.js and KaTeX once)
	$(BIN)/python tools/slides.py $(CH)

lab: $(STAMP)  ## JupyterLab on the chapters' lab copies (_build/lab: MyST rendering, glued numbers from the cells you run); works as root too
	$(BIN)/python -m ipykernel install --user --name mnist-book --display-name "MNIST Book (.venv)"
	$(BIN)/python -m mnist_lib.book _build/lab
	$(BIN)/jupyter lab _build/lab $$([ "$$(id -u)" -eq 0 ] && echo --allow-root) $(LAB_ARGS)

data: $(STAMP)  ## verify the shipped MNIST files
	$(BIN)/python -m mnist_lib data

doctor: $(STAMP)  ## print the environment, the device, whether the data check out and the book is built
	$(BIN)/python -m mnist_lib doctor

bench: $(STAMP)  ## the speed benchmark on this machine's best device: table on screen, JSON in bench/
	mkdir -p bench
	$(BIN)/python -m mnist_lib bench --out bench/$$($(BIN)/python -c "from mnist_lib.train import choose_device; print(choose_device().type)").json

gpu-check: $(STAMP)  ## on a CUDA machine: tests, syncs, resumes, benchmark, chapters on the GPU; PASS/FAIL vs the GPU targets (~10 min; BUDGET=seconds)
	$(BIN)/python -m mnist_lib.gpu_check $(if $(BUDGET),--budget $(BUDGET))

clean:  ## remove the built website
	rm -rf _build
