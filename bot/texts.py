"""Every user-facing string, in English and Chinese, chosen by the user's language.

One table, one fallback language (English). Error keys from `pipeline.errors` map to a short
message here; a key with no entry gets the generic message, never the exception's text.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

LANGS = ("en", "zh")
FALLBACK = "en"

# Words in a spoken request that pick a style (checked in this order).
STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "funny": ("funny", "hilarious", "comedy", "joke", "搞笑", "好笑", "有趣", "幽默"),
    "product": ("product", "review", "unboxing", "产品", "种草", "测评", "开箱"),
    "vlog": ("vlog", "my day", "daily", "日常", "生活", "记录"),
    "motivational": ("motivational", "inspiring", "motivation", "励志", "激励", "正能量"),
    "knowledge": ("explain", "explainer", "knowledge", "educational", "科普", "知识", "讲解"),
}

LENGTHS = (15, 30, 60)

T: dict[str, dict[str, str]] = {
    "help": {
        "en": (
            "🎬 I turn your topic and your own footage into a narrated, subtitled vertical "
            "short.\n\n"
            "/new – start a video: topic (text or a voice note), style, then your videos and "
            "photos\n/done – finished sending footage\n/feedback – what viewers said: comments "
            "in, a report and ideas for the next video out\n/cancel – stop what is going on\n"
            "/lang – 中文 / English\n/help – this message\n\n"
            "You can also just send a voice note like “make a 30-second funny video about my "
            "cat”.\nBefore rendering I show you a storyboard; you can edit the script or ask "
            "for another version."
        ),
        "zh": (
            "🎬 我能把你的主题和你自己拍的素材，做成带配音和字幕的竖屏短视频。\n\n"
            "/new – 开始做视频：主题（文字或语音）、风格，然后发视频和照片\n"
            "/done – 素材发完了\n/feedback – 观众反馈：发来评论，得到分析和下一期的点子\n"
            "/cancel – 取消当前操作\n/lang – 中文 / English\n"
            "/help – 查看帮助\n\n"
            "也可以直接发一条语音，比如“帮我做一个30秒的搞笑视频，讲我的猫”。\n"
            "正式渲染前我会先给你看分镜，你可以修改文案或换一个版本。"
        ),
    },
    "ask_topic": {
        "en": "What is the video about? Send the topic as text or a voice note.",
        "zh": "视频讲什么？用文字或语音发给我主题。",
    },
    "heard": {
        "en": "🎙 I heard: “{text}”",
        "zh": "🎙 我听到的是：“{text}”",
    },
    "heard_fix": {
        "en": "If that is not right, just send the topic again.",
        "zh": "如果不对，直接重新发一次主题即可。",
    },
    "ask_style": {"en": "Pick a style:", "zh": "选择一个风格："},
    "ask_options": {
        "en": "Language: {language} · Length: {seconds} s\nChange them or tap Next.",
        "zh": "语言：{language} · 时长：{seconds} 秒\n可以修改，或点“下一步”。",
    },
    "btn_next": {"en": "Next ➡️", "zh": "下一步 ➡️"},
    "ask_footage": {
        "en": (
            "Now send your footage: videos, photos, albums or files (a caption on each helps "
            "me pick shots). Send /done or tap Done when finished."
        ),
        "zh": "现在发素材：视频、照片、相册或文件都可以（每个加一句说明能帮我选镜头）。"
        "发完后发送 /done 或点“完成”。",
    },
    "btn_done": {"en": "✅ Done", "zh": "✅ 完成"},
    "btn_pool_on": {"en": "👥 Let others add footage", "zh": "👥 允许其他人补充素材"},
    "pool_on": {
        "en": "Group members can now add footage by replying to this message.",
        "zh": "群成员现在可以回复这条消息来补充素材。",
    },
    "got_footage": {"en": "Got it: {items} so far.", "zh": "收到：目前共 {items}。"},
    "n_videos": {"en": "{n} video(s), {seconds:.0f} s", "zh": "{n} 段视频（{seconds:.0f} 秒）"},
    "n_photos": {"en": "{n} photo(s)", "zh": "{n} 张图片"},
    "and": {"en": " and ", "zh": "、"},
    "got_pooled": {
        "en": "Thanks {name}, added to {owner}'s video.",
        "zh": "谢谢 {name}，已加入 {owner} 的视频。",
    },
    "no_footage": {
        "en": "Send at least one video or photo first.",
        "zh": "请先至少发一个视频或照片。",
    },
    "not_footage": {
        "en": "That is not a video or a photo. Send videos, photos or albums, then /done.",
        "zh": "这不是视频或照片。请发送视频、照片或相册，然后发 /done。",
    },
    "too_big": {
        "en": (
            "“{name}” is {size_mb:.0f} MB; bots can only download files up to {limit_mb} MB. "
            "Send a shorter clip, let Telegram compress it (send it as a video, not a file), "
            "or run the bot with a local Bot API server (TELEGRAM_LOCAL_MODE)."
        ),
        "zh": "“{name}” 有 {size_mb:.0f} MB，机器人最多只能下载 {limit_mb} MB 的文件。"
        "请剪短一些，或以视频（而非文件）方式发送让 Telegram 压缩，"
        "或者使用本地 Bot API 服务器（TELEGRAM_LOCAL_MODE）。",
    },
    "skipped": {
        "en": "I left it out; the rest of your footage is kept. Send another file or /done.",
        "zh": "这个文件没有加入，其余素材都保留。可以继续发送，或发送 /done。",
    },
    "too_big_unsized": {
        "en": (
            "“{name}” is larger than the {limit_mb} MB bots can download. Send a shorter clip, "
            "let Telegram compress it (send it as a video, not a file), or run the bot with a "
            "local Bot API server (TELEGRAM_LOCAL_MODE)."
        ),
        "zh": "“{name}” 超过了机器人可下载的 {limit_mb} MB。请剪短一些，"
        "或以视频（而非文件）方式发送让 Telegram 压缩，"
        "或者使用本地 Bot API 服务器（TELEGRAM_LOCAL_MODE）。",
    },
    "limit_footage": {
        "en": "That is the maximum of {limit} files per video; I will use the ones I have.",
        "zh": "每个视频最多 {limit} 个素材，我会用已经收到的这些。",
    },
    "limit_seconds": {
        "en": "Footage is limited to {limit:.0f} s in total per video; “{name}” was not added.",
        "zh": "每个视频的素材总时长上限是 {limit:.0f} 秒，“{name}” 没有加入。",
    },
    "limit_jobs": {
        "en": "You have made {limit} videos in the last hour; please try again later.",
        "zh": "你在过去一小时已经做了 {limit} 个视频，请稍后再试。",
    },
    "busy": {
        "en": "You already have a video in the making. Send /cancel to stop it first.",
        "zh": "你已经有一个视频在制作中。如需重新开始，请先发送 /cancel。",
    },
    "queued": {
        "en": "⏳ In the queue: {ahead} job(s) ahead of yours.",
        "zh": "⏳ 排队中：前面还有 {ahead} 个任务。",
    },
    "starting": {"en": "⏳ Starting…", "zh": "⏳ 开始处理…"},
    "stage_analyze": {"en": "🔎 Watching your footage", "zh": "🔎 分析素材"},
    "stage_script": {"en": "✍️ Writing the script", "zh": "✍️ 撰写文案"},
    "stage_narrate": {"en": "🎙 Recording the voice", "zh": "🎙 生成配音"},
    "stage_plan": {"en": "🎬 Planning the edit", "zh": "🎬 规划剪辑"},
    "stage_render": {"en": "🎞 Rendering", "zh": "🎞 渲染视频"},
    "stage_fit": {"en": "📦 Compressing to fit Telegram", "zh": "📦 压缩以符合 Telegram 限制"},
    "stage_upload": {"en": "📤 Sending", "zh": "📤 发送中"},
    "storyboard": {
        "en": "📝 Storyboard: “{title}”\n\n{script}\n\nRender it, edit the script, or ask for "
        "another version.",
        "zh": "📝 分镜：“{title}”\n\n{script}\n\n可以直接渲染、修改文案，或换一个版本。",
    },
    "storyboard_sound": {"en": "🔊 Sound: {items}", "zh": "🔊 现场声音：{items}"},
    "sound_at": {"en": "line {n}: {what}", "zh": "第 {n} 句{what}"},
    "sound_music_left_out": {
        "en": "the footage has its own music, so the background music is left out",
        "zh": "素材自带音乐，不再叠加背景音乐",
    },
    "sound_laughter_kept": {"en": "laughter kept", "zh": "保留笑声"},
    "sound_applause_kept": {"en": "applause kept", "zh": "保留掌声"},
    "sound_cheering_kept": {"en": "cheering kept", "zh": "保留欢呼声"},
    "sound_animal_kept": {"en": "animal sounds kept", "zh": "保留动物叫声"},
    "sound_speech_quoted": {"en": "the quoted words kept", "zh": "保留引用的原话"},
    "sound_music_in_footage": {"en": "the footage's music kept", "zh": "保留素材里的音乐"},
    "sound_footage_music_muted": {
        "en": "the footage's music muted under your music",
        "zh": "素材音乐静音，只用背景音乐",
    },
    "sound_noise_muted": {"en": "wind/noise muted", "zh": "风声/噪音已静音"},
    "sound_speech_muted": {"en": "talk muted under the voice", "zh": "素材人声静音"},
    "btn_no_music": {"en": "🔇 No music", "zh": "🔇 不要音乐"},
    "music_ok": {
        "en": "🎵 “{name}” ({seconds}) will be the music, looped and lowered under the voice. "
        "Send another audio file to replace it, or tap 🔇 No music.",
        "zh": "🎵 “{name}”（{seconds}）将作为背景音乐，循环播放，说话时自动压低。"
        "再发一个音频可替换，点 🔇 不要音乐 可取消。",
    },
    "music_off": {
        "en": "🔇 No music: the video has only the voice and the footage's own sound.",
        "zh": "🔇 不加音乐：视频只有配音和素材本身的声音。",
    },
    "btn_render": {"en": "✅ Render", "zh": "✅ 渲染"},
    "btn_edit": {"en": "✏️ Edit script", "zh": "✏️ 修改文案"},
    "btn_another": {"en": "🔁 Another version", "zh": "🔁 换一个版本"},
    "edit_prompt": {
        "en": "Reply with the corrected script: the first line is the hook, the last the call "
        "to action, one sentence per line; a “Title:” line and #hashtags are optional.",
        "zh": "请回复修改后的文案：第一行是开场，最后一行是结尾号召，每行一句；"
        "可选加一行“标题：”和 #话题标签。",
    },
    "idle": {
        "en": "Send /new to make a video, or /help to see what I can do.",
        "zh": "发送 /new 开始做视频，或发送 /help 查看说明。",
    },
    "edit_empty": {
        "en": "I need at least two lines (hook and call to action).",
        "zh": "至少需要两行（开场和结尾）。",
    },
    "done": {"en": "✅ Done! Here is your video.", "zh": "✅ 完成！这是你的视频。"},
    "script_full": {"en": "📝 Script:\n\n{script}", "zh": "📝 完整文案：\n\n{script}"},
    "warnings": {"en": "⚠️ Note: {items}", "zh": "⚠️ 提示：{items}"},
    "cancelled": {"en": "❌ Cancelled.", "zh": "❌ 已取消。"},
    "nothing_to_cancel": {"en": "Nothing to cancel.", "zh": "当前没有可取消的操作。"},
    "resumed": {
        "en": "🔄 The bot restarted; your video is back in the queue and will continue.",
        "zh": "🔄 机器人重启了，你的视频已重新排队，会继续制作。",
    },
    "not_yours": {
        "en": "These buttons belong to someone else.",
        "zh": "这些按钮属于其他人。",
    },
    "stale": {"en": "This is no longer active.", "zh": "此操作已失效。"},
    "not_allowed": {
        "en": "Sorry, this bot is private.",
        "zh": "抱歉，这是一个私人机器人。",
    },
    "lang_set": {"en": "Language: English", "zh": "语言：中文"},
    "transcribing": {"en": "🎙 Listening…", "zh": "🎙 正在识别语音…"},
    "voice_request": {
        "en": "Topic: {topic}\nStyle: {style} · Length: {seconds} s",
        "zh": "主题：{topic}\n风格：{style} · 时长：{seconds} 秒",
    },
    "voice_unclear": {
        "en": "I could not make out any words. Please type the topic instead.",
        "zh": "没有听清楚，请用文字发送主题。",
    },
    # Errors, by the key of the ReelbotError that caused them.
    "error_generic": {
        "en": "😵 Something went wrong on my side. Please try again.",
        "zh": "😵 出了点问题，请重试。",
    },
    "media_missing": {"en": "“{name}” could not be found.", "zh": "找不到“{name}”。"},
    "media_empty": {"en": "“{name}” is an empty file.", "zh": "“{name}” 是空文件。"},
    "media_not_media": {
        "en": "“{name}” is not a video or a photo.",
        "zh": "“{name}” 不是视频或照片。",
    },
    "media_corrupt": {
        "en": "“{name}” is damaged: no picture in it can be read.",
        "zh": "“{name}” 已损坏，读不出任何画面。",
    },
    "media_audio_only": {
        "en": "“{name}” has sound but no picture; send videos or photos.",
        "zh": "“{name}” 只有声音没有画面，请发送视频或照片。",
    },
    "media_zero_duration": {
        "en": "“{name}” has no length (0 s).",
        "zh": "“{name}” 时长为 0。",
    },
    "media_not_audio": {
        "en": "“{name}” is not music I can play, so it is not used; your footage is kept.",
        "zh": "“{name}” 不是可以播放的音乐，未采用；已收到的素材都还在。",
    },
    "media_unsupported": {
        "en": "“{name}” is in a format I cannot read.",
        "zh": "“{name}” 的格式无法读取。",
    },
    "media_too_large": {
        "en": "“{name}” is too large a picture (over the pixel limit).",
        "zh": "“{name}” 的画面太大（超过像素上限）。",
    },
    "media_unusable": {"en": "“{name}” cannot be used.", "zh": "“{name}” 无法使用。"},
    "cancelled_error": {"en": "❌ Cancelled.", "zh": "❌ 已取消。"},
    "render_failed": {
        "en": "😵 Rendering failed. Please try again; if it keeps failing, try other footage.",
        "zh": "😵 渲染失败。请重试；如果一直失败，请换一些素材。",
    },
    "data_invalid": {
        "en": "😵 A file of this job could not be read back. Please start the video again.",
        "zh": "😵 这个任务的一个文件无法读取，请重新制作视频。",
    },
    "narration_failed": {
        "en": "😵 The voice-over could not be made, not even with the offline voice. Please try "
        "again in a moment.",
        "zh": "😵 配音失败（离线语音也没有成功）。请稍后再试。",
    },
    "tts_failed": {
        "en": "😵 The voice-over could not be made. Please try again in a moment.",
        "zh": "😵 配音失败，请稍后再试。",
    },
    "script_invalid": {
        "en": "✏️ That script cannot be used ({field}: {problem}). Please fix it and send it again.",
        "zh": "✏️ 这份脚本不能用（{field}：{problem}）。请修改后重新发送。",
    },
    "job_unreadable": {
        "en": "😵 This video's files could not be read back. Please start it again with /new.",
        "zh": "😵 这个视频的文件无法读取，请发送 /new 重新制作。",
    },
    "written_by_model": {"en": "✍️ Script by {model}.", "zh": "✍️ 脚本由 {model} 撰写。"},
    "written_offline": {"en": "✍️ Script by the built-in writer.", "zh": "✍️ 脚本由内置写作器撰写。"},
    "lm_unavailable": {
        "en": "The writing model is not available right now, so the built-in writer wrote the "
        "script.",
        "zh": "写作模型暂时不可用，已改用内置写作器生成脚本。",
    },
    "lm_timeout": {
        "en": "The writing model took too long, so the built-in writer wrote the script.",
        "zh": "写作模型响应太慢，已改用内置写作器生成脚本。",
    },
    "lm_bad_output": {
        "en": "The writing model's answer could not be used, so the built-in writer wrote the "
        "script.",
        "zh": "写作模型的回答无法使用，已改用内置写作器生成脚本。",
    },
    "plan_invalid": {
        "en": "😵 I could not plan this edit. Please try again with other footage.",
        "zh": "😵 无法规划这次剪辑，请换些素材再试。",
    },
    "download_failed": {
        "en": "I could not download “{name}” from Telegram; please send it again.",
        "zh": "无法从 Telegram 下载“{name}”，请重新发送。",
    },
    "script_request_invalid": {
        "en": "I cannot write a script for this request. Send /new to start again.",
        "zh": "无法为这个请求撰写文案。请发送 /new 重新开始。",
    },
    # A ScriptRequestError names its field; a field with its own entry gets it.
    "script_request_invalid_topic": {
        "en": "I cannot use that as a topic: once emoji, symbols and markup are left out, no "
        "words remain. What is the video about? Send it in words.",
        "zh": "这个主题无法使用：去掉表情、符号和标记后没有剩下文字。视频讲什么？请用文字发给我。",
    },
    "storage_full": {
        "en": "😵 My disk is full, so I cannot keep that now. Please try again later.",
        "zh": "😵 服务器磁盘已满，暂时无法保存。请稍后再试。",
    },
    "too_big_result": {
        "en": "The video is too large to send even after compressing; try a shorter length.",
        "zh": "视频压缩后仍然太大，无法发送；请选择更短的时长。",
    },
    # Reliability: voice-note cap, stickers, low disk, delivery failures.
    "voice_too_long": {
        "en": "That voice note is {length} long; I take voice notes of up to {limit}. Send a "
        "shorter one, or type the topic.",
        "zh": "这条语音有 {length}，我最多只能识别 {limit} 的语音。"
        "请发一条短一些的，或者直接用文字发送主题。",
    },
    "n_minutes": {"en": "{n} min", "zh": "{n} 分钟"},
    "n_seconds": {"en": "{n} s", "zh": "{n} 秒"},
    "speech_timeout": {
        "en": "Transcribing that voice note took too long, so I stopped. Please type the topic "
        "or send a shorter voice note.",
        "zh": "这条语音识别太久，已停止。请用文字发送主题，或发一条短一些的语音。",
    },
    "sticker_in_draft": {
        "en": "Stickers cannot go into a video. Send what I asked for: the topic as text or a "
        "voice note, or your footage as videos and photos (then /done).",
        "zh": "贴纸不能用在视频里。请按提示发送：用文字或语音发主题，或者发视频和照片作为素材"
        "（发完后发送 /done）。",
    },
    "sticker_idle": {
        "en": "I cannot use stickers. Send /new to make a video from your own videos and photos.",
        "zh": "我没法使用贴纸。发送 /new，用你自己的视频和照片来做视频。",
    },
    "disk_low_footage": {
        "en": "The bot's server is short of disk space ({free_mb} MB free), so I could not take "
        "“{name}”. What you sent before is kept; try again later, or send /done to use it.",
        "zh": "机器人服务器的磁盘空间不足（剩余 {free_mb} MB），无法接收“{name}”。"
        "之前发送的素材都已保留；请稍后再试，或发送 /done 使用已有素材。",
    },
    "disk_low_render": {
        "en": "The bot's server is short of disk space ({free_mb} MB free, about {need_mb} MB "
        "needed to render), so nothing was rendered. Your storyboard is kept: tap ✅ Render "
        "again later.",
        "zh": "机器人服务器的磁盘空间不足（剩余 {free_mb} MB，渲染约需 {need_mb} MB），"
        "没有开始渲染。分镜已保留，请稍后再点“✅ 渲染”。",
    },
    "delivery_failed": {
        "en": "✅ Your video is ready, but Telegram did not accept it when I sent it. It is kept: "
        "tap 🔁 Send again.",
        "zh": "✅ 视频已经做好，但发送时 Telegram 没有接收。视频已保留，请点“🔁 重新发送”。",
    },
    "btn_resend": {"en": "🔁 Send again", "zh": "🔁 重新发送"},
    # Edits by replying to a delivered video (bot/edits.py).
    "edit_confirm_line": {
        "en": "I'll change sentence {index} to “{text}” and re-render:",
        "zh": "我会把第 {index} 句改成“{text}”并重新渲染：",
    },
    "edit_confirm_title": {
        "en": "I'll change the title to “{text}” and re-render:",
        "zh": "我会把标题改成“{text}”并重新渲染：",
    },
    "edit_confirm_shot": {
        "en": "I'll replace shot {index} and re-render:",
        "zh": "我会换掉第 {index} 个镜头并重新渲染：",
    },
    "edit_confirm_music": {
        "en": "I'll put this music under the video and re-render:",
        "zh": "我会换上这段音乐并重新渲染：",
    },
    "edit_confirm_nomusic": {
        "en": "I'll take the music out and re-render:",
        "zh": "我会去掉音乐并重新渲染：",
    },
    "edit_confirm_length": {
        "en": "I'll rewrite it for {seconds} s and re-render:",
        "zh": "我会按 {seconds} 秒重写并重新渲染：",
    },
    "edit_confirm_language": {
        "en": "I'll remake it in {language} and re-render:",
        "zh": "我会用{language}重做并重新渲染：",
    },
    "edit_confirm_rate_faster": {
        "en": "I'll make the voice faster (the captions follow it) and re-render:",
        "zh": "我会把语速调快（字幕随之调整）并重新渲染：",
    },
    "edit_confirm_rate_slower": {
        "en": "I'll make the voice slower (the captions follow it) and re-render:",
        "zh": "我会把语速调慢（字幕随之调整）并重新渲染：",
    },
    "edit_confirm_voice_male": {
        "en": "I'll have a male voice read it and re-render:",
        "zh": "我会换成男声朗读并重新渲染：",
    },
    "edit_confirm_voice_female": {
        "en": "I'll have a female voice read it and re-render:",
        "zh": "我会换成女声朗读并重新渲染：",
    },
    "edit_confirm_voice_other": {
        "en": "I'll have another voice read it and re-render:",
        "zh": "我会换一个声音朗读并重新渲染：",
    },
    "edit_confirm_captions_bigger": {
        "en": "I'll make the captions bigger and re-render:",
        "zh": "我会把字幕调大并重新渲染：",
    },
    "edit_confirm_captions_smaller": {
        "en": "I'll make the captions smaller and re-render:",
        "zh": "我会把字幕调小并重新渲染：",
    },
    "edit_confirm_captions_top": {
        "en": "I'll move the captions to the top and re-render:",
        "zh": "我会把字幕移到上方并重新渲染：",
    },
    "edit_confirm_captions_middle": {
        "en": "I'll move the captions to the middle and re-render:",
        "zh": "我会把字幕移到中间并重新渲染：",
    },
    "edit_confirm_captions_bottom": {
        "en": "I'll move the captions to the bottom and re-render:",
        "zh": "我会把字幕移到下方并重新渲染：",
    },
    "edit_unknown": {
        "en": "I can change, in a reply to the video: a sentence (“line 2: new words”), the "
        "title (“title: …”), a shot (“replace shot 3”), the music (send an audio file, or “no "
        "music”), the length (“shorter”, “20 s”), the language (“in Chinese”), the voice "
        "(“faster”, “slower”, “male voice”, “another voice”) or the captions (“bigger "
        "captions”, “captions at the top”).",
        "zh": "回复视频即可修改：某一句（“第2句：新的文案”）、标题（“标题：……”）、镜头（“第三个镜头"
        "换掉”）、音乐（发一段音频，或“不要音乐”）、时长（“短一点”“20秒”）、语言（“用英文”）、"
        "声音（“语速快一点”“说慢点”“男声”“换个声音”）或字幕（“字幕大一点”“字幕放上面”）。",
    },
    "edit_busy": {
        "en": "Another video of yours is being made; reply again when it is done.",
        "zh": "你还有一个视频正在制作，完成后再回复修改。",
    },
    "edit_gone": {
        "en": "I no longer have the files of that video; send /new to make it again.",
        "zh": "服务器上已不再保留这个视频的文件，请发送 /new 重新制作。",
    },
    "edit_dropped": {"en": "✖ Not changed.", "zh": "✖ 不修改。"},
    "btn_edit_ok": {"en": "✅", "zh": "✅"},
    "btn_edit_no": {"en": "✖", "zh": "✖"},
    "edit_impossible": {
        "en": "That change cannot be made to this video (no other footage for that shot).",
        "zh": "这个修改做不了（没有别的素材可以换这个镜头）。",
    },
    "edit_limit": {
        "en": "That is as far as it goes (the voice's speed or the captions' size); the video "
        "stays as it is.",
        "zh": "已经调到头了（语速或字幕大小），视频保持原样。",
    },
    "resend_gone": {
        "en": "That video is no longer kept on the server; send /new to make it again.",
        "zh": "服务器上已不再保留这个视频，请发送 /new 重新制作。",
    },
    # Audience feedback (/feedback, 📊 Feedback under a video, 🎬 Make this under an idea).
    "btn_feedback": {"en": "📊 Feedback", "zh": "📊 观众反馈"},
    "feedback_ask": {
        "en": "Send me the comments: paste them (one per line), forward them, or send an "
        "export (TXT, CSV, JSON, XLSX) or screenshots of the comment section. Then tap "
        "Analyse or send /done.",
        "zh": "把评论发给我：直接粘贴（一行一条）、转发，或者发送导出文件（TXT、CSV、JSON、"
        "XLSX）或评论区截图。发完后点“开始分析”或发送 /done。",
    },
    "feedback_got": {
        "en": "Got {added} comment(s); {total} in all. Send more, or tap Analyse.",
        "zh": "收到 {added} 条评论，共 {total} 条。可以继续发送，或点“开始分析”。",
    },
    "btn_analyse": {"en": "📊 Analyse", "zh": "📊 开始分析"},
    "feedback_none": {
        "en": "No comments yet: paste some, or send an export file or a screenshot.",
        "zh": "还没有评论：请粘贴评论，或发送导出文件或截图。",
    },
    "feedback_working": {"en": "🔎 Reading {n} comment(s)…", "zh": "🔎 正在分析 {n} 条评论…"},
    "feedback_timeout": {
        "en": "The analysis took too long, so I stopped. Send fewer comments and try again.",
        "zh": "分析时间太长，已停止。请少发一些评论再试。",
    },
    "feedback_ideas": {
        "en": "💡 Ideas for your next video (tap one to start it):",
        "zh": "💡 下一期视频的点子（点一下就能开始做）：",
    },
    "btn_make_idea": {"en": "🎬 Make this: idea {n}", "zh": "🎬 做这个：点子 {n}"},
    "idea_picked": {
        "en": "🎬 Topic: {topic}\nStyle: {style}\nThe points viewers asked for go into the script.",
        "zh": "🎬 主题：{topic}\n风格：{style}\n观众想知道的要点会写进文案。",
    },
    "comments_empty": {"en": "“{name}” is empty.", "zh": "“{name}” 是空的。"},
    "comments_not_text": {
        "en": "“{name}” is not text, a table or an image I can read comments from.",
        "zh": "“{name}” 不是文本、表格或图片，读不出评论。",
    },
    "comments_too_big": {
        "en": "“{name}” is too big ({detail}); send a smaller export or split it.",
        "zh": "“{name}” 太大（{detail}），请发送小一些的导出文件，或拆开发送。",
    },
    "comments_no_text_column": {
        "en": "I found no column of comment text in “{name}”.",
        "zh": "在“{name}”里没有找到评论内容那一列。",
    },
    "comments_no_text_in_image": {
        "en": "I could not read any comments in that picture.",
        "zh": "这张图片里没有识别出评论。",
    },
    "comments_unreadable": {"en": "“{name}” could not be read.", "zh": "“{name}” 无法读取。"},
    "comments_no_comments": {
        "en": "“{name}” has no comments in it.",
        "zh": "“{name}” 里没有评论。",
    },
    "render_timeout": {
        "en": "😵 Rendering got stuck and was stopped, also on a second, safer try. "
        "Please try again; if it happens again, try other footage.",
        "zh": "😵 渲染卡住，已停止（较稳妥的第二次尝试也未成功）。"
        "请重试；如果再次发生，请换一些素材。",
    },
    # -- channels (bot.publish) --
    "chan_generic": {"en": "my channel", "zh": "我的频道"},
    "btn_post": {"en": "📢 Post to {channel}", "zh": "📢 发布到 {channel}"},
    "btn_sched": {"en": "🕒 Schedule", "zh": "🕒 定时发布"},
    "btn_in1h": {"en": "in 1 h", "zh": "1 小时后"},
    "btn_at20": {"en": "tonight 20:00", "zh": "今晚 20:00"},
    "btn_at08": {"en": "tomorrow 08:00", "zh": "明早 08:00"},
    "btn_athm": {"en": "other time (HH:MM)", "zh": "其他时间（HH:MM）"},
    "btn_unsched": {"en": "❌ Cancel this post", "zh": "❌ 取消这次发布"},
    "chan_private_only": {
        "en": "Send /channel to me in a private chat.",
        "zh": "请在与我的私聊中发送 /channel。",
    },
    "chan_howto": {
        "en": "📢 To publish to your channel: add me to it as an administrator who may post "
        "messages, then forward me any post from the channel (or send its @name).",
        "zh": "📢 发布到你的频道：先把我加为频道管理员（允许发布消息），"
        "然后把频道里的任意一条消息转发给我（或发送频道的 @用户名）。",
    },
    "chan_list": {
        "en": "Linked channels (⭐ default):\n{channels}",
        "zh": "已关联的频道（⭐ 为默认）：\n{channels}",
    },
    "chan_tz_now": {
        "en": "Your time zone: {tz} (send another to change it).",
        "zh": "你的时区：{tz}（发送新的时区即可修改）。",
    },
    "chan_tz_ask": {
        "en": "🌍 Which time zone are you in? Send a name like Asia/Shanghai or an offset "
        "like +08:00.",
        "zh": "🌍 你在哪个时区？请发送如 Asia/Shanghai 的名称或如 +08:00 的偏移。",
    },
    "chan_tz_bad": {
        "en": "I did not recognise that time zone; send a name like Europe/Berlin or an "
        "offset like -05:00.",
        "zh": "没有识别出这个时区；请发送如 Asia/Shanghai 的名称或如 +08:00 的偏移。",
    },
    "chan_tz_set": {"en": "🌍 Time zone set: {tz}.", "zh": "🌍 时区已设为：{tz}。"},
    "chan_not_found": {
        "en": "I cannot see that channel. Add me to it as an administrator first, then try again.",
        "zh": "我看不到这个频道。请先把我加为频道管理员，然后再试。",
    },
    "chan_not_channel": {"en": "That is not a channel.", "zh": "这不是一个频道。"},
    "chan_bot_not_admin": {
        "en": "⚠️ I am not an administrator allowed to post in “{channel}” (any more). Make me "
        "an administrator with “Post messages” there, then try again.",
        "zh": "⚠️ 我（已）不是“{channel}”中可发布消息的管理员。"
        "请在频道里授予我“发布消息”权限后再试。",
    },
    "chan_user_not_admin": {
        "en": "⛔ You are not an administrator of “{channel}”, so I will not publish there "
        "for you.",
        "zh": "⛔ 你不是“{channel}”的管理员，我不会替你在那里发布。",
    },
    "chan_linked": {
        "en": "✅ Linked “{channel}”; it is your default channel. I will also read the comments "
        "under my posts there.",
        "zh": "✅ 已关联“{channel}”，并设为默认频道。我也会读取我发布的帖子下的评论。",
    },
    "chan_linked_no_comments": {
        "en": "✅ Linked “{channel}”; it is your default channel. It has no discussion group, "
        "so there are no comments to read.",
        "zh": "✅ 已关联“{channel}”，并设为默认频道。该频道没有讨论组，因此没有评论可读。",
    },
    "chan_linked_not_in_group": {
        "en": "✅ Linked “{channel}”; it is your default channel. To read the comments, make me "
        "an administrator of its discussion group too.",
        "zh": "✅ 已关联“{channel}”，并设为默认频道。若要读取评论，请也把我设为其讨论组的管理员。",
    },
    "chan_default_set": {"en": "⭐ Default channel changed.", "zh": "⭐ 默认频道已更改。"},
    "chan_none": {
        "en": "You have not linked a channel yet: send me /channel in a private chat.",
        "zh": "你还没有关联频道：请在私聊中发送 /channel。",
    },
    "chan_when": {
        "en": "🕒 When should it go to “{channel}”? (time zone {tz})",
        "zh": "🕒 什么时候发布到“{channel}”？（时区 {tz}）",
    },
    "chan_hhmm_ask": {
        "en": "Send the time as HH:MM (24 h).",
        "zh": "请以 HH:MM（24 小时制）发送时间。",
    },
    "chan_hhmm_bad": {"en": "Please send a time like 18:30.", "zh": "请发送类似 18:30 的时间。"},
    "chan_scheduled": {
        "en": "🕒 Scheduled for {when} in “{channel}”.",
        "zh": "🕒 已定于 {when} 发布到“{channel}”。",
    },
    "chan_already": {
        "en": "This video is already posted (or on its way) to “{channel}”.",
        "zh": "这个视频已经发布（或正在发布）到“{channel}”。",
    },
    "chan_posted": {"en": "📢 Posted to “{channel}”.", "zh": "📢 已发布到“{channel}”。"},
    "chan_post_failed": {
        "en": "⚠️ Telegram did not accept the post in “{channel}”.",
        "zh": "⚠️ Telegram 没有接受发往“{channel}”的帖子。",
    },
    "chan_post_unknown": {
        "en": "⚠️ I stopped while posting to “{channel}”, so I cannot tell whether it went out. "
        "I will not send it again; please check the channel.",
        "zh": "⚠️ 发布到“{channel}”时我中断了，无法确定是否已发出。我不会重发，请查看频道。",
    },
    "chan_no_video": {
        "en": "That video is not kept any more; nothing to post.",
        "zh": "这个视频已不再保留，无法发布。",
    },
    "chan_cancelled": {"en": "❌ Scheduled post cancelled.", "zh": "❌ 定时发布已取消。"},
    "chan_nothing_pending": {"en": "No scheduled posts.", "zh": "没有定时发布。"},
    "chan_pending": {"en": "Scheduled posts:\n{items}", "zh": "定时发布：\n{items}"},
    "chan_no_posts": {"en": "No channel posts yet.", "zh": "还没有频道帖子。"},
    "chan_comment_counts": {
        "en": "Comments under your channel posts:\n{items}",
        "zh": "你的频道帖子下的评论数：\n{items}",
    },
}


def lang_of(code: str | None) -> str:
    """The bot language for a Telegram language code (zh-hans, zh-TW -> zh; others -> en)."""
    if code and code.lower().startswith("zh"):
        return "zh"
    return FALLBACK


def t(lang: str, key: str, **params: Any) -> str:
    """The text for `key` in `lang` (falling back to English), with `params` filled in."""
    entry = T.get(key) or T["error_generic"]
    template = entry.get(lang) or entry[FALLBACK]
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        log.warning("text %r is missing parameters %s", key, sorted(params))
        return (T["error_generic"].get(lang) or T["error_generic"][FALLBACK]).format()


def error_text(lang: str, key: str, params: dict[str, Any] | None = None) -> str:
    """The short user message for an error key; unknown keys get the generic message."""
    if key == "cancelled":
        key = "cancelled_error"
    field = (params or {}).get("field")
    if isinstance(field, str) and f"{key}_{field}" in T:
        key = f"{key}_{field}"
    if key not in T:
        key = "error_generic"
    return t(lang, key, **(params or {}))


def error_key(err: BaseException | None) -> tuple[str, dict[str, Any]]:
    """The text key and parameters for an exception: a ReelbotError's own key; a full disk
    (an OSError ENOSPC, SQLite's "database or disk is full") is worded as such, since the
    user can do nothing but wait; anything else is "internal" (the generic message)."""
    from pipeline.errors import ReelbotError

    if isinstance(err, ReelbotError):
        return err.key, dict(err.params)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "storage_full", {}
    if isinstance(err, sqlite3.OperationalError) and "full" in str(err).lower():
        return "storage_full", {}
    return "internal", {}


def style_names() -> dict[str, dict[str, str]]:
    """Style id -> {lang: button label}: the script writer's styles (its names and emoji)."""
    from pipeline.script import STYLES as pipeline_styles

    return {
        sid: {lang: f"{style.emoji} {style.name(lang)}".strip() for lang in LANGS}
        for sid, style in pipeline_styles.items()
    }


def sound_text(lang: str, sounds: Sequence[tuple[int, str]]) -> str:
    """The storyboard's line on the footage's own sound ("" when there is nothing to say);
    reason codes this version does not know are left out."""
    items = []
    for n, code in sounds:
        if f"sound_{code}" not in T:
            continue
        what = t(lang, f"sound_{code}")
        items.append(what if n <= 0 else t(lang, "sound_at", n=n, what=what))
    return t(lang, "storyboard_sound", items="; ".join(items)) if items else ""
