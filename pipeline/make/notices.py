"""What the user should know about a job, kept as a code and its facts, worded for each reader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should know about a job (a file left out, the fallback voice),
    kept as a code and its facts so it can be worded in the reader's language, which is not
    always the video's (a Chinese speaker making an English video reads Chinese)."""

    code: Literal["footage_skipped", "voice_fallback"]
    params: dict[str, str]

    def text(self, language: str) -> str:
        p = self.params
        if self.code == "footage_skipped":
            return skipped_warning(p["name"], p["reason"], language)
        return voice_warning(p["engine"], p["voice"], p["reason"], p.get("code"), language)


# Warnings reach the user as they are (the bot shows them), so they are written in the video's
# language.
_ZH_REASONS = {
    "missing": "文件不存在", "empty": "空文件", "not_media": "不是视频或图片",
    "corrupt": "文件已损坏", "audio_only": "只有声音没有画面", "zero_duration": "时长为零",
    "unsupported": "格式不支持", "too_large": "画面太大",
}  # fmt: skip


def skipped_warning(name: str, reason: str, language: str) -> str:
    """The warning for a footage file left out."""
    if language == "zh":
        return f"{name} 已跳过：{_ZH_REASONS.get(reason, reason)}"
    return f"{name} skipped: {reason.replace('_', ' ')}"


_ZH_TTS = {
    "offline": "已设为离线模式", "no_voice": "没有这个声音", "forbidden": "服务拒绝了请求",
    "http_error": "服务出错", "dns": "域名解析失败", "unreachable": "连不上服务",
    "timeout": "连接超时", "no_audio": "服务没有返回声音", "protocol": "服务应答异常",
}  # fmt: skip


def voice_warning(engine: str, voice: str, reason: str, code: str | None, language: str) -> str:
    """The warning that the offline voice spoke, and why edge-tts did not."""
    if language == "zh":
        why = _ZH_TTS.get(code or "", "出错")
        return f"配音：edge-tts 不可用（{why}），已改用离线语音 {engine}（{voice}）"
    return f"voice: {engine} ({voice}) spoke instead of edge-tts: {reason}"
