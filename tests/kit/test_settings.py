"""What `ehall config` and the serve banner print of the settings: never a secret."""
import pytest

from backend.settings import Settings, mask_url_password


class TestMaskUrlPassword:
    @pytest.mark.parametrize("url,printed", [
        ("postgres://ehall:s3cret@db:5432/ehall", "postgres://ehall:********@db:5432/ehall"),
        ("postgres://ehall@db:5432/ehall?password=s3cret", "postgres://ehall@db:5432/ehall?password=********"),
        ("postgres://ehall@db/ehall?sslmode=verify-full&sslpassword=s3cret&application_name=ehall",
         "postgres://ehall@db/ehall?sslmode=verify-full&sslpassword=********&application_name=ehall"),
        ("redis://127.0.0.1:6379/0?password=s3cret&socket_timeout=5",
         "redis://127.0.0.1:6379/0?password=********&socket_timeout=5"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:********@127.0.0.1:6379/0"),
        ("redis://h/0?Token=s3cret", "redis://h/0?Token=********"),
        ("sqlite://var/ehall.sqlite3", "sqlite://var/ehall.sqlite3"),
        ("", ""),
    ])
    def test_passwords_in_the_userinfo_and_in_the_query_are_masked(self, url, printed):
        assert mask_url_password(url) == printed

    def test_the_printed_settings_mask_the_metrics_token_and_both_urls(self):
        masked = Settings(database_url="postgres://u@db/e?password=s3cret", redis_url="redis://h/0?password=s3cret",
                          metrics={"token": "s3cret"}).masked()
        assert "s3cret" not in repr(masked)
        assert masked["metrics"]["token"] == "********"
        assert masked["metrics"]["allow"] == ["127.0.0.1/32", "::1/128"]

    def test_the_printed_settings_mask_the_sms_providers_secrets(self):
        masked = Settings(sms={"aliyun": {"access_key_id": "LTAIvisible", "access_key_secret": "s3cret"},
                               "tencent": {"secret_id": "AKIDvisible", "secret_key": "s3cret"}}).masked()
        assert "s3cret" not in repr(masked)
        assert masked["sms"]["aliyun"]["access_key_secret"] == masked["sms"]["tencent"]["secret_key"] == "********"
        assert masked["sms"]["aliyun"]["access_key_id"] == "LTAIvisible"   # an id, not a secret: shown for support
