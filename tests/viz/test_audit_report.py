"""The audit page and the diff page: every text from the data escaped, only embedded images, tables that sort."""

from r3lab.viz.audit_report import audit_html, diff_html

EVIL = '"><img src=x onerror=alert(1)>'


def record(i, ok, image="data:image/png;base64,iVBORw0KGgo="):
    return {
        "sample_id": f"{EVIL}{i}",
        "family": f"fam{EVIL}",
        "question": f"<script>q{i}</script>",
        "answers": [EVIL],
        "own": {"answer": EVIL, "correct": ok, "crops": [{"box_input": [1, 2, 3, 4], "image": image}]},
        "settings": {"no_crop": {"answer": "<i>x</i>", "correct": False}},
        "tool_only": ok,
    }


def test_the_audit_page_escapes_the_data_and_embeds_only_data_images():
    results = {
        "rows": {
            f"fam{EVIL}": {
                "n": 2,
                "accuracy": 0.5,
                "chance": 0.5,
                "acc_no_crop": 0.0,
                "acc_no_crop_lo": 0.0,
                "acc_no_crop_hi": 0.8,
                "acc_no_crop_chance": 0.5,
            }
        }
    }
    page = audit_html(results, [record(0, True), record(1, False, image="http://example.com/x.png")], EVIL)
    assert "<img src=x" not in page and "<script>q0" not in page and "<i>x</i>" not in page
    assert "&lt;script&gt;q0&lt;/script&gt;" in page and "&quot;&gt;&lt;img" in page
    assert page.count('<img src="data:image/png;base64,') == 1  # the crop given by URL is not fetched: its box only
    assert "example.com" not in page and "[0.40, 0.80]" not in page and "[0.000, 0.800]" in page
    assert page.count('class="sortable"') >= 3 and "addEventListener('click'" in page


def test_the_diff_page_escapes_and_counts():
    diff = {
        "common": 2,
        "only_a": [],
        "only_b": [EVIL],
        "families": {"all": {"n": 2, "fixed": 1, "broken": 0}},
        "changed": [
            {
                "sample_id": EVIL,
                "family": "f",
                "question": "<b>?</b>",
                "answers": ["a"],
                "change": "fixed",
                "a": {"answer": EVIL, "correct": False, "crops": []},
                "b": {"answer": "a", "correct": True, "crops": []},
            }
        ],
    }
    page = diff_html(diff, "<a>", "b")
    assert "<img src=x" not in page and "<b>?</b>" not in page and "&lt;a&gt;" in page and "1 only in B" in page


def test_plot_audit_draws_one_panel_per_family_with_chance():
    from matplotlib.figure import Figure

    from r3lab.viz.audit import SHOWN, plot_audit

    row = {k: 0.5 for k in SHOWN} | {"chance": 0.2, "accuracy_lo": 0.4, "accuracy_hi": 0.6}
    fig = plot_audit(
        {
            "A": {"rows": {"read_one": row, "control": row, "all": row}},
            "B": {"rows": {"read_one": row, "control": row, "all": row}},
        }
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [a.get_title() for a in fig.axes] == ["read_one", "control"]
    assert len(fig.axes[0].patches) == 2 * len(SHOWN) and fig.axes[0].lines  # bars of both models, chance line
