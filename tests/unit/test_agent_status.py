from gl_operator.agent_status import summarize


def v(version, state):
    return {"metadata": {}, "spec": {"version": version}, "status": {"state": state} if state else {}}


def test_summary_uses_semver_precedence_and_ignores_retired_for_latest():
    summary = summarize([v("1.10.0", "certified"), v("1.9.0", "certified"), v("2.0.0-rc.1", "experimental"),
                         v("3.0.0", "retired"), v("2.1.0", None)])
    assert summary["latestVersion"] == "2.0.0-rc.1"
    assert summary["certifiedVersion"] == "1.10.0"
    assert summary["versionCounts"] == {"draft": 0, "experimental": 1, "certified": 2, "deprecated": 0, "retired": 1}


def test_no_versions():
    assert summarize([]) == {"latestVersion": None, "certifiedVersion": None,
                             "versionCounts": {s: 0 for s in ("draft", "experimental", "certified", "deprecated",
                                                              "retired")}}
