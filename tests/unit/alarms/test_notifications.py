"""The SMS plan: once per crossing, quiet hours for the non-urgent, English and Simplified Chinese texts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.alarms import (
    AlarmEvent,
    AlarmPolicy,
    acknowledge,
    evaluate_collector,
    observe_reading,
    observe_silence,
)
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.notifications import (
    Audience,
    Contact,
    Language,
    NotificationPolicy,
    PlannedMessage,
    QuietHours,
    Recipients,
    plan_notifications,
    still_worth_sending,
)
from tests.unit.alarms.builders import T0, balance_walk, flat, reading, walk

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = NotificationPolicy(zone=SHANGHAI, signature="Sunrise Park")
TENANT_ZH = Contact("+8613800000001", Language.ZH_HANS)
SITE_EN = Contact("+8613900000002", Language.EN)
SHOP = Recipients(unit_label="B2-1F-015", subject_label="DT-0042", tenant=(TENANT_ZH,), site=(SITE_EN,))
NOON = datetime(2024, 3, 1, 12, 0, tzinfo=SHANGHAI)


def events_for(balances: list[int]) -> list[AlarmEvent]:
    return flat(balance_walk(balances)[1])


def plan(events: list[AlarmEvent], now: datetime = NOON, recipients: Recipients = SHOP) -> list[PlannedMessage]:
    return plan_notifications(events, recipients, POLICY, now)


def test_one_message_per_recipient_per_crossing_and_none_for_flapping() -> None:
    hovering = [6000, 5000, 5050, 4990, 5100, 4800]
    messages = plan(events_for(hovering))
    assert [(m.recipient, m.audience) for m in messages] == [(TENANT_ZH.phone, Audience.TENANT),
                                                             (SITE_EN.phone, Audience.SITE)]
    assert len({m.dedupe_key for m in messages}) == 2


def test_a_re_raise_after_a_proper_clear_notifies_again() -> None:
    messages = plan(events_for([6000, 4000, 9000, 4000]))
    assert len(messages) == 4
    assert len({m.dedupe_key for m in messages}) == 4
    assert len({m.alarm_id for m in messages}) == 2


def test_planning_the_same_events_twice_gives_the_same_keys() -> None:
    events = events_for([6000, 4000])
    assert [m.dedupe_key for m in plan(events)] == [m.dedupe_key for m in plan(events)]


def test_clears_and_acknowledgements_plan_nothing() -> None:
    state, steps = balance_walk([6000, 4000, 9000])
    assert plan(steps[2]) == []
    state, steps = balance_walk([6000, 4000])
    assert state is not None
    _, acked = acknowledge(state, steps[1][0].alarm.alarm_id, "ops", T0 + timedelta(hours=2))
    assert plan(acked) == []


def test_texts_name_the_shop_and_the_remaining_amount_in_both_languages() -> None:
    tenant, site = plan(events_for([6000, 1234]))[:2]
    assert tenant.language is Language.ZH_HANS and site.language is Language.EN
    assert tenant.text == "【Sunrise Park】商铺号B2-1F-015：电费报警1，余额偏低，剩余金额12.34，请及时充值。"
    assert site.text == ("[Sunrise Park] Shop B2-1F-015: electricity alarm 1, balance low. "
                         "Remaining amount 12.34. Please top up soon.")


def test_alarm_2_and_arrears_texts_use_the_glossary() -> None:
    texts = [m.text for m in plan(events_for([6000, -500])) if m.language is Language.ZH_HANS]
    assert ["报警1" in texts[0], "报警2" in texts[1], "欠费" in texts[2]] == [True, True, True]
    assert all("剩余金额" in text for text in texts)
    assert "剩余金额-5.00" in texts[2]


def test_an_arrears_trip_says_the_power_is_off() -> None:
    _, steps = walk([observe_reading(reading(0, balance=-1, relay_open=True))])
    texts = {m.language: m.text for m in plan(steps[0]) if "arrears" in m.alarm_id}
    assert "已拉闸断电" in texts[Language.ZH_HANS] and "-0.01" in texts[Language.ZH_HANS]
    assert "the power is cut off" in texts[Language.EN]


def test_quiet_hours_defer_alarm_1_and_2_to_their_end() -> None:
    events = events_for([6000, 1000])
    late_evening = datetime(2024, 3, 1, 23, 30, tzinfo=SHANGHAI)
    early_morning = datetime(2024, 3, 2, 7, 59, tzinfo=SHANGHAI)
    for now in (late_evening, early_morning):
        messages = plan(events, now)
        assert {m.not_before for m in messages} == {datetime(2024, 3, 2, 0, 0, tzinfo=UTC)}  # 08:00 in Shanghai
        assert not any(m.urgent for m in messages)


def test_outside_quiet_hours_messages_go_at_once() -> None:
    for now in (NOON, datetime(2024, 3, 1, 8, 0, tzinfo=SHANGHAI), datetime(2024, 3, 1, 21, 59, tzinfo=SHANGHAI)):
        assert {m.not_before for m in plan(events_for([6000, 1000]), now)} == {now.astimezone(UTC)}


def test_arrears_goes_at_once_even_at_night() -> None:
    night = datetime(2024, 3, 1, 2, 0, tzinfo=SHANGHAI)
    messages = plan(events_for([6000, -10]), night)
    by_level = {(m.alarm_id.split(":")[2], m.audience): m for m in messages}
    assert by_level[("arrears", Audience.TENANT)].not_before == night
    assert by_level[("arrears", Audience.TENANT)].urgent
    assert by_level[("alarm-1", Audience.TENANT)].not_before == datetime(2024, 3, 1, 8, 0, tzinfo=SHANGHAI)


def test_a_lost_collector_is_urgent_and_goes_to_the_site_only() -> None:
    heard = datetime(2024, 3, 1, 1, 10, tzinfo=SHANGHAI)
    night = heard + timedelta(minutes=20)
    _, events = evaluate_collector(None, "c-7", heard, AlarmPolicy(), night)
    messages = plan_notifications(events, Recipients(subject_label="Room B2 manager", tenant=(TENANT_ZH,),
                                                     site=(SITE_EN, Contact("+8613700000003", Language.ZH_HANS))),
                                  POLICY, night)
    assert [(m.recipient, m.not_before) for m in messages] == [(SITE_EN.phone, night), ("+8613700000003", night)]
    assert messages[0].text == ("[Sunrise Park] Collector Room B2 manager lost contact: "
                                "nothing heard since 2024-03-01 01:10.")
    assert messages[1].text == "【Sunrise Park】通讯管理机Room B2 manager失联：自2024-03-01 01:10起无通讯。"


def test_a_lost_meter_tells_the_site_not_the_tenant_and_waits_for_morning() -> None:
    _, steps = walk([observe_silence("m-1", T0, 3)])
    night = datetime(2024, 3, 1, 23, 0, tzinfo=SHANGHAI)
    messages = plan(steps[0], night, Recipients("B2-1F-015", "DT-0042", (TENANT_ZH,),
                                                (Contact("+8613700000003", Language.ZH_HANS),)))
    assert [m.audience for m in messages] == [Audience.SITE]
    assert messages[0].text == "【Sunrise Park】商铺号B2-1F-015的电表DT-0042失联：连续3次抄表无应答。"
    assert messages[0].not_before == datetime(2024, 3, 2, 8, 0, tzinfo=SHANGHAI)


def test_kinds_without_a_rule_plan_nothing() -> None:
    _, steps = walk([observe_reading(reading(0, energy="900")), observe_reading(reading(1, energy="800"))])
    assert steps[1] and plan(steps[1]) == []


def test_a_phone_on_both_lists_gets_one_message() -> None:
    both = Recipients(unit_label="A-1", tenant=(SITE_EN,), site=(SITE_EN,))
    messages = plan(events_for([6000, 1000]), recipients=both)
    assert [m.audience for m in messages] == [Audience.TENANT, Audience.TENANT]  # alarm 1 and alarm 2
    assert len({m.dedupe_key for m in messages}) == 2


def test_daytime_quiet_hours_and_none() -> None:
    siesta = NotificationPolicy(SHANGHAI, QuietHours(time(12, 0), time(14, 0)))
    messages = plan_notifications(events_for([6000, 1000]), SHOP, siesta, NOON)
    assert {m.not_before for m in messages} == {datetime(2024, 3, 1, 14, 0, tzinfo=SHANGHAI)}
    always = NotificationPolicy(SHANGHAI, None)
    night = datetime(2024, 3, 1, 23, 0, tzinfo=SHANGHAI)
    assert {m.not_before for m in plan_notifications(events_for([6000, 1000]), SHOP, always, night)} == {night}
    with pytest.raises(ValidationError):
        QuietHours(time(8, 0), time(8, 0))


def test_quiet_hours_follow_the_sites_zone_across_a_clock_change() -> None:
    london = NotificationPolicy(ZoneInfo("Europe/London"))
    before_the_change = datetime(2024, 3, 30, 23, 0, tzinfo=UTC)  # 23:00 GMT; 08:00 next day is BST
    [message, *_] = plan_notifications(events_for([6000, 1000]), SHOP, london, before_the_change)
    assert message.not_before == datetime(2024, 3, 31, 7, 0, tzinfo=UTC)


def test_planning_needs_an_aware_now() -> None:
    with pytest.raises(ValidationError):
        plan(events_for([6000, 1000]), datetime(2024, 3, 1, 12, 0))


def test_a_deferred_message_is_dropped_once_its_alarm_cleared() -> None:
    _, steps = balance_walk([6000, 4000, 9000])
    raised, cleared = steps[1][0].alarm, steps[2][0].alarm
    message = plan(steps[1])[0]
    assert still_worth_sending(message, raised)
    assert not still_worth_sending(message, cleared)
    assert not still_worth_sending(message, None)


def test_a_tenant_who_turned_alerts_off_hears_only_of_arrears() -> None:
    quiet = Contact("+8613800000003", Language.ZH_HANS, urgent_only=True)
    shop = Recipients(unit_label="B2-1F-015", subject_label="DT-0042", tenant=(quiet,), site=())
    messages = plan(events_for([6000, 4000, 1500, -100]), recipients=shop)  # alarm 1, alarm 2, then arrears
    assert len(messages) == 1 and messages[0].urgent and "欠费" in messages[0].text
