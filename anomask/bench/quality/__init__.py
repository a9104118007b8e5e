"""``anomask bench quality``: ``plan`` (what is trained and how a budget becomes
iterations), ``runner`` (trains and evaluates the plan), ``metrics``/``per_pixel`` (the
numbers compared), ``claims`` (the papers' claims and their verdicts), ``report``
(paper-style tables) and ``cli`` (the command)."""
