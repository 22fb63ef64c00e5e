"""One translation mechanism for pages, API messages and the CLI: Vietnamese msgids, Babel .po for English.

Vietnamese (with diacritics) is the source language, so a missing translation still shows correct Vietnamese.
Catalogs are read straight from the .po files with Babel (no compile step, nothing to forget at install).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).parent / "web" / "locale"
LANGS = ("vi", "en")
DEFAULT_LANG = "vi"


@functools.cache
def _catalog(lang: str) -> dict[str, str]:
    if lang == DEFAULT_LANG:
        return {}
    from babel.messages.pofile import read_po

    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        logger.warning("no catalog for %s at %s", lang, path)
        return {}
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in cat if m.id and m.string and isinstance(m.id, str)}


def normalize_lang(lang: str | None) -> str:
    if not lang:
        return DEFAULT_LANG
    code = lang.strip().lower()[:2]
    return code if code in LANGS else DEFAULT_LANG


def translate(msgid: str, lang: str = DEFAULT_LANG) -> str:
    """The text of ``msgid`` in ``lang``; the Vietnamese msgid itself when there is no translation."""
    code = normalize_lang(lang)
    found = _catalog(code).get(msgid)
    if found is None and code == "en":
        found = MEDIA_EN.get(msgid)
    return found if found is not None else msgid


def gettext_for(lang: str) -> functools.partial[str]:
    return functools.partial(_gettext, lang=normalize_lang(lang))


def _gettext(msgid: str, lang: str = DEFAULT_LANG, **params: object) -> str:
    text = translate(msgid, lang)
    return text.format(**params) if params else text


def bilingual(msgid: str, **params: object) -> str:
    """'Vietnamese / English' for logs-free places that must speak to both (CLI errors, API msg)."""
    vi = _gettext(msgid, "vi", **params)
    en = _gettext(msgid, "en", **params)
    return vi if vi == en else f"{vi} / {en}"


MEDIA_EN: dict[str, str] = {
    # meeting.media.signaling
    "Thông điệp phải là một đối tượng JSON có trường 'type'": "A message must be a JSON object with a 'type' field",
    "Loại thông điệp không hỗ trợ: {kind}": "Unsupported message type: {kind}",
    "Thiếu trường '{name}' trong thông điệp {kind}": "Field '{name}' is missing from the {kind} message",
    "Phiên báo hiệu đã đóng": "The signaling session is closed",
    "Gửi 'offer' trước khi gửi 'candidate'": "Send an 'offer' before any 'candidate'",
    "Ứng viên ICE không hợp lệ: {error}": "Invalid ICE candidate: {error}",
    "Chỉ điểm cầu chủ trì mới được trao hoặc thu hồi quyền phát biểu": (
        "Only the host hall may grant or revoke the floor"
    ),
    "Thiếu trường 'site' khi trao quyền phát biểu": "Field 'site' is missing from the floor grant",
    "Hành động không hợp lệ: {action} (grant|revoke)": "Invalid action: {action} (grant|revoke)",
    # meeting.media.sfu
    "Không có phòng họp {room} đang diễn ra": "No meeting room {room} is running",
    "SFU chưa chạy": "The SFU is not running",
    "SDP offer không hợp lệ: {error}": "Invalid SDP offer: {error}",
    "SDP offer không có luồng âm thanh hay hình ảnh nào": "The SDP offer has no audio or video stream",
    "Không có kết nối chuyển tiếp {peer}": "No relay connection {peer}",
    "Điểm cầu {site} chưa kết nối vào phòng {room}": "Site {site} is not connected to room {room}",
    # meeting.api.routes.ws (refusals of the signaling WebSocket)
    "Thông điệp đầu tiên phải có type 'auth' và token": "The first message must have type 'auth' and a token",
    "Cần đăng nhập hoặc mã tham gia cuộc họp": "Log in or send a meeting join token",
    "Mã điểm cầu đã bị thu hồi": "The site token has been revoked",
    "Bạn không có quyền tham gia phòng họp này": "You may not join this meeting room",
    "Kết nối từ trang web khác bị từ chối": "Connections from another web site are refused",
    "Không có cuộc họp này": "No such meeting",
    "Hết thời gian chờ xác thực": "Timed out waiting for authentication",
    "Điểm cầu đã kết nối lại từ một phiên khác": "The site reconnected from another session",
    "Cuộc họp đã bị hủy": "The meeting has been cancelled",
    "Điểm cầu đã được mời ra khỏi buổi họp này": "The site has been removed from this meeting",
    "Buổi họp đã kết thúc": "The meeting has ended",
    "Mã tham gia không hợp lệ": "Invalid join token",
    "Mã tham gia đã hết hạn": "The join token has expired",
    "Mã tham gia không dành cho cuộc họp này": "The join token is for another meeting",
    "Điểm cầu không tham dự cuộc họp này": "The site is not invited to this meeting",
    # meeting.agent (the room agent's errors, shown by `meeting agent` as "VI / EN")
    "Cấu hình không hợp lệ: {error}": "Invalid configuration: {error}",
    "Không kết nối được máy chủ {server}: {error}": "Cannot reach the server {server}: {error}",
    "Không mở được camera {source}: {error} (PyAV cần FFmpeg có v4l2)": (
        "Cannot open the camera {source}: {error} (PyAV needs an FFmpeg built with v4l2)"
    ),
    "Không đọc được tệp cấu hình {path}: {error}": "Cannot read the config file {path}: {error}",
    "Không đọc được tệp mã điểm cầu {path}: {error}": "Cannot read the site token file {path}: {error}",
    "Máy chủ từ chối mã điểm cầu của {site} (đã thu hồi hoặc điểm cầu không tồn tại): "
    "xin cấp mã mới bằng 'meeting sites token {site}'": (
        "The server rejects the site token of {site} (revoked, or the site is unknown): "
        "issue a new one with 'meeting sites token {site}'"
    ),
    "Máy chủ từ chối yêu cầu {path}: HTTP {status}": "The server refused {path}: HTTP {status}",
    "Máy chủ {server} trả lời HTTP {status}": "The server {server} answered HTTP {status}",
    "Mã điểm cầu thuộc điểm cầu {owner}, cấu hình ghi {site}: sửa 'site' hoặc tệp mã": (
        "The site token belongs to site {owner} but the config says {site}: fix 'site' or the token file"
    ),
    "Nguồn (source) không hợp lệ: {source} (testsrc, một tệp, hoặc v4l2:/dev/videoN)": (
        "Invalid source: {source} (testsrc, a file, or v4l2:/dev/videoN)"
    ),
    "Thiếu hoặc sai mã điểm cầu (site): {site}": "Missing or invalid site id (site): {site}",
    "Tệp cấu hình {path}: mã điểm cầu phải đặt trong dấu nháy, ví dụ site: '03160'": (
        "The config file {path}: quote the site id, e.g. site: '03160'"
    ),
    "Thiếu {keys}: đặt trong tệp cấu hình (--config) hoặc bằng cờ --{first}": (
        "Missing {keys}: set it in the config file (--config) or with --{first}"
    ),
    "Tệp cấu hình {path} không phải YAML hợp lệ: {error}": "The config file {path} is not valid YAML: {error}",
    "Tệp cấu hình {path} phải là một bảng khóa: giá trị": "The config file {path} must be a mapping of key: value",
    "Tệp cấu hình {path}: khóa không hỗ trợ {keys} (dùng: {known})": (
        "The config file {path}: unsupported keys {keys} (use: {known})"
    ),
    "Tệp mã điểm cầu {path} có quyền {mode}: người khác đọc được, hãy chạy chmod 600 {path}": (
        "The site token file {path} has mode {mode}: others can read it, run chmod 600 {path}"
    ),
    "Tệp {path} không chứa mã điểm cầu (bắt đầu bằng lts_): cấp lại bằng 'meeting sites token SITE'": (
        "The file {path} holds no site token (starting with lts_): issue one with 'meeting sites token SITE'"
    ),
    "{name} phải là số dương, nhận được {value}": "{name} must be a positive number, got {value}",
    "Đầu ra (sink) không hợp lệ: {sink} (null, alsa hoặc đường dẫn tệp)": (
        "Invalid sink: {sink} (null, alsa or a file path)"
    ),
    "Địa chỉ máy chủ (server) phải là http(s)://máy:cổng, nhận được {server}": (
        "The server address must be http(s)://host:port, got {server}"
    ),
    "Không liên lạc được với tác nhân đang chạy qua {path}: {error} (tác nhân có đang chạy không?)": (
        "Cannot reach the running agent through {path}: {error} (is the agent running?)"
    ),
    "Tác nhân từ chối: {error}": "The agent refused: {error}",
    # meeting.media.recorder (another part of the media plane)
    "Phòng họp {room} đang được ghi hình": "Room {room} is being recorded",
    # meeting.media.turn
    "Chưa có khóa bí mật TURN": "There is no TURN secret",
    "Chưa cấu hình địa chỉ TURN (LIENTHONG_TURN_URLS)": "No TURN address is configured (LIENTHONG_TURN_URLS)",
    "Đã cấu hình địa chỉ TURN nhưng thiếu tham chiếu khóa bí mật (LIENTHONG_TURN_SECRET_REF)": (
        "TURN addresses are configured but the secret reference is missing (LIENTHONG_TURN_SECRET_REF)"
    ),
    "Không đọc được khóa bí mật TURN: {error}": "Cannot read the TURN secret: {error}",
    "Khóa bí mật TURN phải là env: hoặc vault:, không phải keyfile:": (
        "The TURN secret must be an env: or vault: reference, not keyfile:"
    ),
    "Không tìm thấy turnserver (cài gói Debian coturn)": "turnserver not found (install the Debian package coturn)",
    "turnserver dừng ngay khi khởi động: {error}": "turnserver exited right after starting: {error}",
    "turnserver không mở cổng {port} sau {seconds} giây": "turnserver did not open port {port} within {seconds} s",
}
"""English for the media plane, the signaling socket and the room agent (Vietnamese msgids, as in the .po).

Kept apart from ``web/locale/en`` because those strings never reach a page template; the .po catalog wins when
it has the same msgid. ``tests/media/test_media_i18n.py`` proves every such msgid has an entry here or there.
"""
