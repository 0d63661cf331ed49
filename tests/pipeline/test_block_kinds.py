"""Block kinds (pipeline/block_kinds.py) on blocks laid out by hand: what the text and the
place say plainly gets a kind, anything else none."""

from __future__ import annotations

import numpy as np

from ocrmill.pipeline.block_kinds import BLOCK_KINDS, block_kinds, is_list_start

UNIT = 20.0
PROSE = "the river ran past the old mill and on to the sea"


class Page:
    """Blocks added top to bottom, each a list of (x0, x1, text) lines of a given height."""

    def __init__(self) -> None:
        self.boxes: list[list[float]] = []
        self.texts: list[str] = []
        self.blocks: list[list[int]] = []
        self.y = 0.0

    def add(self, lines: list[tuple[float, float, str]], height: float = UNIT, gap: float = 1.5):
        block = []
        for x0, x1, text in lines:
            block.append(len(self.boxes))
            self.boxes.append([x0, self.y, x1, self.y + height])
            self.texts.append(text)
            self.y += height * 1.4
        self.blocks.append(block)
        self.y += gap * UNIT

    def kinds(self) -> list:
        return block_kinds(self.blocks, np.array(self.boxes), self.texts, UNIT)


def test_each_kind_where_the_page_shows_it():
    page = Page()
    page.add([(0, 300, "Journal of Mills, vol. 3")], height=16)  # running header
    page.add([(0, 900, "The River and the Mill")], height=40)  # title
    page.add([(300, 600, "Ann Writer, Ben Writer"), (330, 570, "Mill University")])  # centred
    page.add([(0, 200, "1 Introduction")])
    page.add([(40, 900, PROSE), (0, 900, PROSE), (0, 500, "and back again.")])
    page.add([(0, 800, "• the river " + PROSE)])
    page.add([(0, 700, "• the mill " + PROSE), (30, 700, "and the sea")])
    page.add([(0, 800, "Figure 2: the mill seen from the river")])
    page.add([(0, 900, PROSE), (0, 900, PROSE)])
    page.y += 10 * UNIT
    page.add([(400, 500, "Page 4")], height=16)  # footer
    assert page.kinds() == [
        "header",
        "title",
        None,
        "heading",
        "paragraph",
        "list_item",
        "list_item",
        "caption",
        "paragraph",
        "footer",
    ]
    assert set(k for k in page.kinds() if k) <= set(BLOCK_KINDS)


def test_an_enumerated_line_is_a_list_item_only_among_others():
    alone = Page()
    alone.add([(0, 900, PROSE), (0, 900, PROSE)])
    alone.add([(0, 300, "2. Results")])
    alone.add([(0, 900, PROSE), (0, 900, PROSE)])
    assert alone.kinds()[1] == "heading"
    listed = Page()
    for k in range(3):
        listed.add([(0, 700, f"{k + 1}. {PROSE}")])
    assert listed.kinds() == ["list_item"] * 3


def test_list_starts():
    assert is_list_start("• first") and is_list_start("- second") and is_list_start("(b) third")
    assert is_list_start("12) twelfth") and is_list_start("iv. fourth")
    assert not is_list_start("* a footnote")  # an asterisk marks footnotes in print
    assert not is_list_start("(818) 708-8131")  # three digits: a number, not an item
    assert not is_list_start("1.50 SR") and not is_list_start("Total 12.50")
