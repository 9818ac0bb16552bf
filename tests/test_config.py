from __future__ import annotations

import pytest

from ragqa import ConfigError, Settings
from ragqa.config import mask_secret


def test_environment_overrides_are_parsed_by_type():
    s = Settings.from_env(
        {"RAGQA_TOP_K": "9", "RAGQA_MMR": "yes", "RAGQA_MMR_LAMBDA": "0.25", "HOME": "/x"}
    )
    assert (s.top_k, s.mmr, s.mmr_lambda) == (9, True, 0.25)


def test_keyword_overrides_win_and_none_is_ignored():
    s = Settings.from_env({"RAGQA_TOP_K": "9"}, top_k=3, chunk_size=None)
    assert s.top_k == 3
    assert s.chunk_size == Settings().chunk_size


def test_unknown_variable_is_rejected_with_a_suggestion():
    with pytest.raises(ConfigError, match="RAGQA_TOPK.*did you mean RAGQA_TOP_K"):
        Settings.from_env({"RAGQA_TOPK": "3"})
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        Settings.from_env({}, colour="red")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAGQA_TOP_K": "many"}, "RAGQA_TOP_K='many' is not a valid int"),
        ({"RAGQA_MMR": "perhaps"}, "not a valid bool"),
        ({"RAGQA_RETRIEVAL_MODE": "fuzzy"}, "retrieval_mode must be one of"),
        ({"RAGQA_LLM": "gpt"}, "llm must be one of"),
        ({"RAGQA_CHUNK_OVERLAP": "500", "RAGQA_CHUNK_SIZE": "600"}, "chunk_overlap"),
        ({"RAGQA_CHUNK_SIZE": "10"}, "chunk_size"),
    ],
)
def test_bad_values_are_explained(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_secrets_are_never_shown():
    s = Settings(llm_api_key="sk-verysecretkey1234")
    assert "verysecret" not in repr(s)
    assert s.redacted()["llm_api_key"] == "sk-…1234"
    assert mask_secret("short") == "…"
    assert mask_secret("") == ""


def test_replace_validates():
    with pytest.raises(ConfigError):
        Settings().replace(top_k=0)
    with pytest.raises(ConfigError, match="unknown"):
        Settings().replace(nope=1)
