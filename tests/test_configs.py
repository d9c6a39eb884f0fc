"""Every shipped gin file parses (by name, as a user names it) and builds its model; none names a path of
this repository's layout."""

import os
import re

import gin
import pytest

from binaries import ROOT
from tlbkit import gin_utils

GIN = os.path.join(ROOT, "gin")
OVERLAYS = ("models/", "sizes/")  # stacked on a task file
NEEDS_DATA = {  # bindings that would read data while the model is built, replaced by small literals here
    "imdb.gin": ["tokenizers.vocabulary.vocabulary = ['good', 'bad']"],
    "imdb_cpu.gin": ["tokenizers.vocabulary.vocabulary = ['good', 'bad']"],
}


def shipped(suffix=".gin"):
    return sorted(os.path.relpath(os.path.join(d, f), GIN).replace(os.sep, "/")
                  for d, _, files in os.walk(GIN) for f in files if f.endswith(suffix))


def build(files, params=()):
    gin.clear_config()
    try:
        gin_utils.parse(files, list(params) + ["UCR_NAME = 'GunPoint'"] if any("ucr" in f for f in files) else params)
        return gin_utils.evaluate_binding("train.model")(num_classes=3)
    finally:
        gin.clear_config()


@pytest.mark.parametrize("name", [n for n in shipped() if not n.startswith(OVERLAYS) and n != "base.gin"])
def test_task_config_parses_and_builds_its_model(name):
    model = build([name], NEEDS_DATA.get(name, []))
    for member in getattr(model, "members", [model]):  # an Ensemble's members, or the model
        assert member.head.num_classes == 3 and member.encoder is not None and member.tokenizer is not None


ENSEMBLE = ["MODEL = @models.ensemble", "models.ensemble.member = @models.classifier"]


def test_an_ensemble_builds_each_member_anew():
    model = build(["recall_cpu.gin"], ENSEMBLE + ["models.ensemble.size = 3"])
    assert type(model).__name__ == "Ensemble" and model.size == 3
    for part in ("tokenizer", "encoder", "head"):
        assert len({id(getattr(m, part)) for m in model.members}) == 3, part
    assert all(m.head.num_classes == 3 for m in model.members)


@pytest.mark.parametrize("size", [1, 2.0, True])
def test_an_ensemble_of_a_bad_size_is_refused(size):
    with pytest.raises(ValueError, match=f"models.ensemble.size must be an int >= 2; got {size!r}"):
        build(["recall_cpu.gin"], ENSEMBLE + [f"models.ensemble.size = {size}"])


@pytest.mark.parametrize("name", [n for n in shipped() if n.startswith(OVERLAYS) and n != "models/tlb.gin"])
def test_overlay_stacks_on_the_main_job(name):  # models/tlb.gin is the base layer every task includes
    model = build(["recall_cpu.gin", name])
    assert model.head.num_classes == 3
    if name == "models/transformer.gin":
        assert type(model.encoder).__name__ == "TransformerEncoder"
    if name == "models/lstm.gin":
        assert type(model.encoder).__name__ == "LSTMEncoder"
    if name.startswith("sizes/"):
        macros = dict(line.split(" = ") for line in open(os.path.join(GIN, name)) if " = " in line)
        assert model.encoder.cell.dim == int(macros["DIM"])


def test_no_shipped_file_names_a_development_path():
    for name in shipped() + shipped(".sweep"):
        text = open(os.path.join(GIN, name)).read()
        assert "../shared" not in text and "/work/" not in text, name
    for folder in ("tlbkit", "tasks"):
        for d, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                if f.endswith(".py"):
                    assert "../shared" not in open(os.path.join(d, f)).read(), os.path.join(d, f)


def test_size_files_hold_macros_only():
    for name in shipped():
        if name.startswith("sizes/"):
            lines = [line.strip() for line in open(os.path.join(GIN, name)) if line.strip() and not line.startswith("#")]
            assert all(line.split(" = ")[0].isupper() for line in lines), name


def test_a_second_parse_in_one_process_replaces_the_locked_first():
    # gin locks a parsed config; the Python surface (TLBClassifier.fit twice, tlbkit.train after a load) parses
    # again in the same process, which failed with "Attempted to modify locked Gin config" before.
    gin_utils.parse(["recall_cpu.gin"], ["train.epochs = 3"])
    assert gin.config_is_locked() and gin.query_parameter("train.epochs") == 3
    try:
        gin_utils.parse(["recall_cpu.gin"], [])
        assert gin.query_parameter("train.epochs") != 3
    finally:
        gin.clear_config()


@pytest.mark.parametrize("old, new", sorted(gin_utils.RENAMED_CONFIGS.items()))
def test_a_renamed_config_asked_for_by_its_old_name_names_the_new_one(old, new, tmp_path):
    assert os.path.isfile(os.path.join(GIN, new)) and not os.path.exists(os.path.join(GIN, old))
    for asked, named in ((old, new), (f"tlbkit:{old}", f"tlbkit:{new}")):
        with pytest.raises(gin_utils.GinConfigError, match=re.escape(f"config '{asked}' was renamed '{named}'")):
            gin_utils.parse([asked], [])
    mine = tmp_path / "mine.gin"  # an include of the old name says the same
    mine.write_text(f"include '{old}'\n")
    with pytest.raises(gin_utils.GinConfigError, match=re.escape(f"was renamed '{new}'")):
        gin_utils.parse([str(mine)], [])
    own = tmp_path / old  # a user's own file of that name is found as any other
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text("")
    assert gin_utils.resolve(old, [str(tmp_path)]) == str(own)
