"""Pure statistics for side-by-side evaluation (no Django import anywhere in this package).

Everything takes the canonical **vote frame** (built and validated by
:func:`sbs.analysis.stats.frame.vote_frame`): a pandas DataFrame, one row per vote,

==========  =====  ==============================================================
column      type   meaning
==========  =====  ==============================================================
question    str    question id
category    str    question category
annotator   str    annotator id
model_a     str    first model of the compared pair (storage order, not screen)
model_b     str    second model of the pair
left        str    which of the two models was shown on the left
choice      str    ``left`` / ``right`` / ``tie`` / ``both_bad`` (screen space)
seconds     float  time on the page
repeat      bool   optional, default False: a repeated pair shown with sides swapped
==========  =====  ==============================================================

The analysis never trusts screen positions: :func:`frame.derive_outcomes` gives the
outcome from model_a's view (``a`` / ``b`` / ``tie`` / ``both_bad``) and
:func:`frame.pair_outcomes` re-orients a pair's votes towards a chosen model. Only
position-bias statistics look at ``choice`` directly.

Policies shared by the modules: ``both_bad`` is reported on its own and excluded from
win-rate denominators (and from Bradley-Terry unless asked); repeat votes are used for
self-consistency and left out of verdicts and ratings unless ``include_repeats=True``.

Modules: :mod:`.frame`, :mod:`.verdict` (two-model verdict), :mod:`.bradley_terry`
(ratings for 2+ models), :mod:`.pairwise` (every pair of N systems: win-rate matrix and
Holm-adjusted verdicts), :mod:`.categories` (per-category verdicts, Holm),
:mod:`.agreement` (inter-annotator agreement, annotator quality), :mod:`.power`
(votes still needed), :mod:`.multiplicity` (Holm and Benjamini–Hochberg), :mod:`.summary`
(summaries of those results for the report). Results are
frozen dataclasses with ``to_dict()`` returning JSON-serialisable plain types (every number
finite or None).
"""
