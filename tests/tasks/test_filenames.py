from mediamill.tasks.filenames import MAX_FILENAME_LENGTH, display_filename


def test_keeps_last_path_segment_only() -> None:
    assert display_filename("../../x.png") == "x.png"
    assert display_filename("C:\\Users\\a\\photo.jpg") == "photo.jpg"


def test_drops_control_and_bidi_characters() -> None:
    rtlo = "\u202e"
    assert display_filename(f"invoice{rtlo}gpj.exe") == "invoicegpj.exe"
    assert display_filename("a\x00b.jpg") == "ab.jpg"
    assert display_filename("zero\u200bwidth.png") == "zerowidth.png"


def test_caps_length_and_keeps_the_extension() -> None:
    name = display_filename("a" * 300 + ".jpeg")
    assert len(name) == MAX_FILENAME_LENGTH
    assert name.endswith(".jpeg")


def test_leading_dots_and_empty_names_are_replaced() -> None:
    assert display_filename(".htaccess") == "htaccess"
    assert display_filename("") == "upload"
    assert display_filename("\x00\u202e") == "upload"


def test_double_extensions_stay_text() -> None:
    assert display_filename("a.jpg.php") == "a.jpg.php"
