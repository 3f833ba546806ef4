"""WeChat's rules for subscribe-message values, applied before sending (a value WeChat would refuse
with 47003 is shortened by the template's rule, or replaced by its fallback, or never sent)."""
import pytest

from notify.templates import NotificationRules, TemplateDataError, WechatMessage, wechat_values


def _message(data: dict[str, str], **rules) -> WechatMessage:
    return WechatMessage(template_id="t", page=None, data=data, **rules)


class TestWechatValues:
    def test_values_are_filled_from_the_event(self):
        values = wechat_values(_message({"character_string1": "{number}", "thing2": "{hall}"}),
                               {"number": "A007", "hall": "集宁区政务服务中心"})
        assert values == {"character_string1": "A007", "thing2": "集宁区政务服务中心"}

    def test_a_thing_over_twenty_characters_is_cut_with_the_templates_mark(self):
        long_name = "内蒙古自治区乌兰察布市察哈尔右翼前旗政务服务中心"
        values = wechat_values(_message({"thing1": "{hall}"}, shorten={"thing1": "…"}), {"hall": long_name})
        assert values["thing1"] == long_name[:19] + "…" and len(values["thing1"]) == 20

    def test_a_thing_over_twenty_characters_without_a_rule_is_never_sent(self):
        with pytest.raises(TemplateDataError) as refused:
            wechat_values(_message({"thing1": "{hall}"}), {"hall": "字" * 21})
        assert refused.value.key == "thing1"

    def test_a_phrase_must_be_five_chinese_characters_or_the_fallback_is_used(self):
        message = _message({"phrase3": "{step}"}, fallback={"phrase3": "有更新"})
        assert wechat_values(message, {"step": "已受理"}) == {"phrase3": "已受理"}
        assert wechat_values(message, {"step": "已办结（准予）"}) == {"phrase3": "有更新"}
        assert wechat_values(message, {"step": "accepted"}) == {"phrase3": "有更新"}

    def test_line_breaks_and_control_characters_become_spaces(self):
        values = wechat_values(_message({"thing1": "{text}"}), {"text": "第一行\n第二行\t完"})
        assert values == {"thing1": "第一行 第二行 完"}

    def test_a_character_string_over_32_is_refused_and_times_take_24_hour_forms(self):
        with pytest.raises(TemplateDataError):
            wechat_values(_message({"character_string1": "{receipt}"}), {"receipt": "1" * 33})
        for good in ("2026年11月26日 09:30", "2026-11-26 09:30", "09:30", "2026-11-26 09:30 ~ 2026-11-26 10:00"):
            assert wechat_values(_message({"time2": "{t}"}), {"t": good}) == {"time2": good}
        with pytest.raises(TemplateDataError):
            wechat_values(_message({"time2": "{t}"}), {"t": "tomorrow morning"})

    def test_an_empty_value_or_an_unknown_key_kind_is_refused(self):
        with pytest.raises(TemplateDataError):
            wechat_values(_message({"thing1": "{missing}"}), {})
        with pytest.raises(TemplateDataError):
            wechat_values(_message({"colour1": "{x}"}), {"x": "red"})


class TestMissingTranslation:
    def test_a_text_missing_in_a_language_is_said_in_chinese_and_logged_once(self, tmp_path, caplog):
        templates = tmp_path / "templates"
        templates.mkdir()
        (templates / "notifications.toml").write_text(
            '[events."x.happened"]\ntemplate = "happened"\nto = "citizen"\n'
            '[templates.happened]\ntitle = {zh = "有新消息", en = "News"}\n', encoding="utf-8")
        (templates / "sms.toml").write_text('[happened]\nzh = "{what}已办好"\nen = "{what} is done"\n',
                                            encoding="utf-8")
        rules = NotificationRules.load(tmp_path)
        template = rules.for_event("x.happened").template
        with caplog.at_level("WARNING", logger="ehall.notify"):
            assert rules.title(template, "mn", {}) == "有新消息"
            assert rules.body(template, "mn", {"what": "营业执照"}) == "营业执照已办好"
            assert rules.body(template, "mn", {"what": "营业执照"}) == "营业执照已办好"
            assert rules.body(template, "en", {"what": "licence"}) == "licence is done"
        missing = [r for r in caplog.records if r.getMessage() == "notification text missing, zh used"]
        assert [r.ehall for r in missing] == [{"text": "happened.title", "language": "mn"},
                                              {"text": "happened.text", "language": "mn"}]
