"""The questions the dashboard counts: new ones appended (the bits of calls counted before keep their
meaning), shown in the funnel in the order a call asks them."""
from readings_store import call_figures
from readings_store.call_figures import BIT, FUNNEL, QUESTIONS, of_step

# The bits as calls were counted before the company's questions came.
EARLIER = ("reminder", "language", "region", "offer_account", "account", "meter", "register", "value", "confirm")


def test_earlier_questions_keep_their_bits():
    assert QUESTIONS[:len(EARLIER)] == EARLIER
    assert all(BIT[q] == 1 << i for i, q in enumerate(EARLIER))


def test_the_serial_and_the_organisation_name_are_counted():
    assert {"meter_serial", "org_name"} <= set(QUESTIONS)
    serial = of_step("meter_serial", "value", "digits")
    assert serial["questions_reached"] == BIT["meter_serial"] | BIT["value"] and serial["questions_passed"] == BIT["meter_serial"]
    name = of_step("org_name", "meter_serial", "recording")
    assert name["questions_passed"] == BIT["org_name"] and name["questions_asked"] == 1
    assert name["answers_speech"] == name["answers_keypad"] == 0  # a recording is neither
    assert of_step("account", "org_name", "digits")["questions_reached"] & BIT["org_name"]


def test_the_funnel_shows_every_question_in_call_order():
    assert sorted(FUNNEL) == sorted(QUESTIONS) and len(set(FUNNEL)) == len(FUNNEL)
    assert FUNNEL.index("account") < FUNNEL.index("org_name") < FUNNEL.index("meter_serial") < FUNNEL.index("value")
    assert call_figures.of_steps([("org_name", "meter_serial", "recording"), ("meter_serial", "value", "digits")])[
        "questions_passed"] == BIT["org_name"] | BIT["meter_serial"]
