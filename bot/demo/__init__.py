"""Data for the newcomer demo: one realistic day on two ministries' Instagram accounts.

``day.jsonl`` (UTF-8, JSON Lines, no comments) holds two kinds of records, told
apart by the ``text`` key.

A post, with no ``text``; all posts come first, one line each::

    {"post": "pkh-tahap4", "account": "kemensos", "caption": "Penyaluran bansos PKH ...",
     "minute_posted": -120}

- ``post``: a short key that comments refer to.
- ``account``: ``kemensos`` or ``kemendag`` (the keys of ``routing.yaml``).
- ``caption``: the post's caption as Instagram shows it.
- ``minute_posted``: minutes after 07:00 WIB of the demo day; negative means
  the post went up before the day starts (-120 is 05:00 WIB).

A message (a comment or a DM), sorted by ``minute``::

    {"account": "kemensos", "channel": "comment", "post": "pkh-tahap4",
     "author": "ibu_sarinah_77", "minute": 3, "text": "min PKH tahap 4 ...", "parent": 12}

- ``account``: ``kemensos`` or ``kemendag``.
- ``channel``: ``comment`` (under a post) or ``dm`` (direct message).
- ``post``: the key of the post it is under; comments only (absent for DMs).
- ``author``: the sender's Instagram handle, without ``@``.
- ``minute``: when it arrives, in minutes after 07:00 WIB, 0..600 (07:00-17:00).
- ``text``: the message as written (may contain newlines, emoji, fancy Unicode,
  HTML-like text such as ``<b>tolong</b> & cepat``, made-up NIKs and phone numbers).
- ``parent`` (optional, comments only): the comment it replies to, as a 0-based
  index into the messages alone (posts not counted: the first message is 0); it
  is an earlier comment under the same post.

The messages carry no labels on purpose: the demo shows what the bot decides.
Every name, handle, NIK, phone number and address in the file is made up.
"""
