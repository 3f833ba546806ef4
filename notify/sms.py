"""SMS senders: the console (development: prints the message), Alibaba Cloud and Tencent Cloud through
their official SDKs. All take a template of config/templates/sms.toml by name and the language; the
providers send the template registered with them for that language, with its parameters by name
(Alibaba Cloud) or in the order they appear in the text (Tencent Cloud)."""
from __future__ import annotations

import json
import logging
import string
import sys
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from backend.kit import clock
from backend.kit.gateways import SmsError
from backend.kit.pii import mask_phone
from backend.settings import AliyunSmsSettings, Settings, TencentSmsSettings

__all__ = ["SmsError", "SmsTemplates", "ConsoleSmsSender", "AliyunSmsSender", "TencentSmsSender",
           "build_sms_sender"]


class SmsTemplates:
    def __init__(self, path: Path):
        with path.open("rb") as handle:
            self._templates: dict[str, dict] = tomllib.load(handle)

    def render(self, template: str, language: str, **params: object) -> str:
        texts = self._templates[template]
        return (texts.get(language) or texts["zh"]).format(**params)

    def texts(self, template: str) -> dict[str, str]:
        """The template's text by language."""
        return {language: text for language, text in self._templates[template].items() if isinstance(text, str)}

    def registered(self, provider: str, template: str, language: str) -> str:
        """The id the provider gave this template in `language` (zh when the language has none)."""
        ids = self._templates.get(template, {}).get(provider, {})
        registered = ids.get(language) or ids.get("zh")
        if not registered:
            raise SmsError(provider, "template_not_registered", retryable=False)
        return registered

    def parameter_order(self, template: str) -> list[str]:
        """The placeholders in the order the Chinese text uses them (Tencent Cloud's parameters are a list)."""
        names = [name for _, name, _, _ in string.Formatter().parse(self._templates[template]["zh"]) if name]
        return list(dict.fromkeys(names))


class ConsoleSmsSender:
    """Prints `[SMS to 138****1234] 【签名】text` on stdout: the phone masked, the text whole so a
    developer can read the login code."""

    def __init__(self, templates: SmsTemplates, sign_name: str, stream: TextIO | None = None):
        self._templates = templates
        self._sign_name = sign_name
        self._stream = stream

    async def send(self, phone: str, template: str, language: str, *, reference: str | None = None,
                   **params: object) -> str | None:
        text = self._templates.render(template, language, **params)
        print(f"[SMS to {mask_phone(phone)}] 【{self._sign_name}】{text}",
              file=self._stream or sys.stdout, flush=True)
        return None

    async def was_sent(self, phone: str, reference: str, *, since: datetime) -> bool | None:
        return None   # a console keeps no record: development only, where a second print harms nobody


log = logging.getLogger("ehall.notify")

# Alibaba Cloud keeps send records by the day (in China's time, the halls' business zone); a lookup reads
# at most this many pages of 50 messages of one number and day
_LOOKUP_PAGES = 4

# Alibaba Cloud's codes worth trying again later (flow control, the balance, its own faults), and those
# that refuse the number itself
_ALIYUN_RETRYABLE = {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH",
                     "isp.SYSTEM_ERROR", "isv.OUT_OF_SERVICE", "Throttling.User", "ServiceUnavailable"}
_ALIYUN_REFUSED_NUMBER = {"isv.MOBILE_NUMBER_ILLEGAL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.MOBILE_COUNT_OVER_LIMIT"}
# Tencent Cloud's: LimitExceeded.* (the number's 30-second or daily allowance), its own faults; refused numbers
_TENCENT_RETRYABLE = ("LimitExceeded", "InternalError", "RequestLimitExceeded", "ServerNetworkError")
_TENCENT_REFUSED_NUMBER = {"InvalidParameterValue.IncorrectPhoneNumber", "FailedOperation.PhoneNumberInBlacklist",
                           "FailedOperation.PhoneNumberParseFail"}


def _aliyun_error(code: str, *, server_side: bool = False) -> SmsError:
    return SmsError("aliyun", code, retryable=server_side or code in _ALIYUN_RETRYABLE,
                    recipient_refused=code in _ALIYUN_REFUSED_NUMBER)


def _tencent_error(code: str) -> SmsError:
    return SmsError("tencent", code, retryable=code.startswith(_TENCENT_RETRYABLE),
                    recipient_refused=code in _TENCENT_REFUSED_NUMBER)


class AliyunSmsSender:
    # The SDKs are imported in the senders, not at the top: a deployment on the console never loads them.
    provider = "aliyun"

    def __init__(self, templates: SmsTemplates, sign_name: str, settings: AliyunSmsSettings):
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.models import Config

        timeout_ms = int(settings.timeout_seconds * 1000)
        self._client = Client(Config(
            access_key_id=settings.access_key_id, access_key_secret=settings.access_key_secret.get_secret_value(),
            endpoint=settings.endpoint, protocol=settings.protocol, connect_timeout=timeout_ms,
            read_timeout=timeout_ms))
        self._templates = templates
        self._sign_name = sign_name

    async def send(self, phone: str, template: str, language: str, *, reference: str | None = None,
                   **params: object) -> str | None:
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest
        from alibabacloud_tea_openapi.exceptions import (
            AlibabaCloudException, ServerException, ThrottlingException,
        )

        request = SendSmsRequest(
            phone_numbers=phone, sign_name=self._sign_name,
            template_code=self._templates.registered(self.provider, template, language),
            template_param=json.dumps({name: str(value) for name, value in params.items()}, ensure_ascii=False),
            out_id=reference)
        try:
            response = await self._client.send_sms_async(request)
        except AlibabaCloudException as error:  # an HTTP error answer: our credentials or signature, or theirs
            raise _aliyun_error(str(error.code), server_side=isinstance(error, (ServerException, ThrottlingException))) \
                from None
        except Exception as error:  # the network: refused, reset, timed out (the SDK wraps them differently)
            # the type only: the SDK's message may carry the request's URL, and with it the phone number
            log.warning("aliyun send unreachable: %s", type(error).__name__)
            raise SmsError(self.provider, "network", retryable=True) from None
        if response.body.code != "OK":
            raise _aliyun_error(response.body.code)
        return response.body.biz_id

    async def was_sent(self, phone: str, reference: str, *, since: datetime) -> bool | None:
        """QuerySendDetails lists every message to `phone` of a day (waiting, delivered or failed) with
        the OutId it was sent with: whether `reference` is among them is a definite answer."""
        from alibabacloud_dysmsapi20170525.models import QuerySendDetailsRequest
        from alibabacloud_tea_openapi.exceptions import (
            AlibabaCloudException, ServerException, ThrottlingException,
        )

        day = since.astimezone(clock.business_zone()).date()
        last = clock.now().astimezone(clock.business_zone()).date()
        while day <= last:
            for page in range(1, _LOOKUP_PAGES + 1):
                request = QuerySendDetailsRequest(phone_number=phone, send_date=f"{day:%Y%m%d}", page_size=50,
                                                  current_page=page)
                try:
                    response = await self._client.query_send_details_async(request)
                except AlibabaCloudException as error:  # an HTTP error answer, as for a send
                    raise _aliyun_error(str(error.code),
                                        server_side=isinstance(error, (ServerException, ThrottlingException))) from None
                except Exception as error:  # the network (the SDK wraps it differently each time): ask later
                    log.warning("aliyun lookup unreachable: %s", type(error).__name__)
                    raise SmsError(self.provider, "lookup_failed", retryable=True) from None
                if response.body.code != "OK":
                    raise _aliyun_error(response.body.code)
                details = response.body.sms_send_detail_dtos
                found = details.sms_send_detail_dto if details else []
                if any(detail.out_id == reference for detail in found or []):
                    return True
                if len(found or []) < 50:
                    break
            day += timedelta(days=1)
        return False


class TencentSmsSender:
    provider = "tencent"

    def __init__(self, templates: SmsTemplates, sign_name: str, settings: TencentSmsSettings):
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111.sms_client_async import SmsClient

        profile = HttpProfile(endpoint=settings.endpoint, protocol=settings.protocol,
                              reqTimeout=int(settings.timeout_seconds))
        self._client = SmsClient(Credential(settings.secret_id, settings.secret_key.get_secret_value()),
                                 settings.region, ClientProfile(httpProfile=profile))
        self._app_id = settings.sdk_app_id
        self._templates = templates
        self._sign_name = sign_name

    async def send(self, phone: str, template: str, language: str, *, reference: str | None = None,
                   **params: object) -> str | None:
        from tencentcloud.common.exception import TencentCloudSDKException
        from tencentcloud.sms.v20210111.models import SendSmsRequest

        request = SendSmsRequest()
        request.PhoneNumberSet = ["+86" + phone]
        request.SmsSdkAppId = self._app_id
        request.SignName = self._sign_name
        request.TemplateId = self._templates.registered(self.provider, template, language)
        request.TemplateParamSet = [str(params[name]) for name in self._templates.parameter_order(template)]
        request.SessionContext = reference or ""
        try:
            response = await self._client.SendSms(request)
        except TencentCloudSDKException as error:
            raise _tencent_error(error.get_code() or "unknown") from None
        except Exception as error:  # the network, as for Alibaba Cloud: tried again later
            log.warning("tencent send unreachable: %s", type(error).__name__)
            raise SmsError(self.provider, "network", retryable=True) from None
        status = response.SendStatusSet[0]
        if status.Code != "Ok":
            raise _tencent_error(status.Code)
        return status.SerialNo

    async def was_sent(self, phone: str, reference: str, *, since: datetime) -> bool | None:
        """PullSmsSendStatusByPhoneNumber gives the delivery reports of `phone` since then, each with
        the SessionContext it was sent with. A report proves the message went out; no report proves
        nothing (it comes when the phone takes the message): None."""
        from tencentcloud.common.exception import TencentCloudSDKException
        from tencentcloud.sms.v20210111.models import PullSmsSendStatusByPhoneNumberRequest

        request = PullSmsSendStatusByPhoneNumberRequest()
        request.PhoneNumber = "+86" + phone
        request.SmsSdkAppId = self._app_id
        request.BeginTime = int(since.timestamp()) - 60
        request.EndTime = int(clock.now().timestamp()) + 60
        request.Offset = 0
        request.Limit = 100
        try:
            response = await self._client.PullSmsSendStatusByPhoneNumber(request)
        except TencentCloudSDKException as error:
            raise _tencent_error(error.get_code() or "unknown") from None
        except Exception as error:  # the network: ask again later
            log.warning("tencent lookup unreachable: %s", type(error).__name__)
            raise SmsError(self.provider, "lookup_failed", retryable=True) from None
        if any(report.SessionContext == reference for report in response.PullSmsSendStatusSet or []):
            return True
        return None


def build_sms_sender(settings: Settings, templates: SmsTemplates) -> ConsoleSmsSender | AliyunSmsSender | TencentSmsSender:
    sms = settings.sms
    if sms.backend == "aliyun":
        return AliyunSmsSender(templates, sms.sign_name, sms.aliyun)
    if sms.backend == "tencent":
        return TencentSmsSender(templates, sms.sign_name, sms.tencent)
    return ConsoleSmsSender(templates, sms.sign_name)
