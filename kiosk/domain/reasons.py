"""Reason codes and the short messages the screen shows for them (Vietnamese, English).

Codes are stable, machine-readable snake_case strings recorded with every check-in.
Messages are plain and short: the screen shows them to the citizen and the queue.
A reason whose meaning is private (a quarantine order, a positive test) gets the
generic message, so the people behind do not learn why someone was stopped.
"""

from __future__ import annotations

import unicodedata

WAIT_FOR_OFFICER = ("Vui lòng chờ cán bộ", "Please wait for an officer")
SHOW_PERSONAL_CODE = (
    "Vui lòng xuất trình mã QR cá nhân",
    "Please show your personal QR code",
)
DAMAGED = ("Mã không hợp lệ, chờ cán bộ kiểm tra", "Invalid code, an officer will check it")

# Codes whose real meaning must not be shown to the queue.
PRIVATE = frozenset({"watchlist", "test_positive"})

_REASONS: dict[str, tuple[str, str]] = {
    # Not a person
    "not_a_person": ("Đây không phải mã cá nhân. " + SHOW_PERSONAL_CODE[0],
                     "This is not a personal code. " + SHOW_PERSONAL_CODE[1]),
    "unrecognised": ("Không nhận ra mã này. " + SHOW_PERSONAL_CODE[0],
                     "Code not recognised. " + SHOW_PERSONAL_CODE[1]),
    "empty": ("Mã trống. " + SHOW_PERSONAL_CODE[0], "Empty code. " + SHOW_PERSONAL_CODE[1]),
    "payload_too_long": ("Mã quá dài. " + SHOW_PERSONAL_CODE[0],
                         "Code too long. " + SHOW_PERSONAL_CODE[1]),
    "parser_error": ("Không đọc được mã. " + SHOW_PERSONAL_CODE[0],
                     "Could not read the code. " + SHOW_PERSONAL_CODE[1]),
    # Any code's text (names, addresses): hidden or reordering characters, absurd lengths
    "text_unsafe": ("Mã có ký tự lạ, chờ cán bộ kiểm tra",
                    "Code has unusual characters, an officer will check"),
    "text_too_long": ("Họ tên hoặc địa chỉ quá dài, chờ cán bộ",
                      "Name or address too long, an officer will check"),
    # Chip ID card
    "cccd_number_invalid": ("Số CCCD phải có đủ 12 chữ số", "An ID number has 12 digits"),
    "cccd_name_missing": ("Thẻ CCCD thiếu họ tên", "ID card has no name"),
    "cccd_birth_date_invalid": ("Ngày sinh trên thẻ CCCD không hợp lệ",
                                "ID card birth date is invalid"),
    "cccd_sex_invalid": ("Giới tính trên thẻ CCCD không hợp lệ", "ID card sex field is invalid"),
    "cccd_issue_date_invalid": ("Ngày cấp thẻ CCCD không hợp lệ", "ID card issue date is invalid"),
    "cccd_issue_date_in_future": ("Ngày cấp thẻ CCCD ở tương lai",
                                  "ID card issue date is in the future"),
    "cccd_province_unknown": ("Mã tỉnh trong số CCCD không đúng",
                              "ID number has an unknown province code"),
    "cccd_sex_mismatch": ("Số CCCD không khớp giới tính", "ID number does not match the sex"),
    "cccd_century_mismatch": ("Số CCCD không khớp thế kỷ sinh",
                              "ID number does not match the birth century"),
    "cccd_birth_year_mismatch": ("Số CCCD không khớp năm sinh",
                                 "ID number does not match the birth year"),
    # Personal COVID QR
    "pc_covid_document_invalid": ("Số giấy tờ trong mã QR cá nhân không hợp lệ",
                                  "Document number in the personal QR is invalid"),
    "pc_covid_name_missing": ("Mã QR cá nhân thiếu họ tên", "Personal QR has no name"),
    "pc_covid_extra_fields": ("Mã QR cá nhân có trường lạ", "Personal QR has unexpected fields"),
    # Health-insurance card
    "bhyt_card_number_invalid": ("Số thẻ BHYT không hợp lệ",
                                 "Health-insurance card number is invalid"),
    "bhyt_name_missing": ("Thẻ BHYT thiếu họ tên", "Health-insurance card has no name"),
    "bhyt_birth_date_invalid": ("Ngày sinh trên thẻ BHYT không hợp lệ",
                                "Health-insurance card birth date is invalid"),
    "bhyt_dates_invalid": ("Hạn thẻ BHYT không hợp lệ",
                           "Health-insurance card validity dates are invalid"),
    "bhyt_expired": ("Thẻ BHYT đã hết hạn", "Health-insurance card has expired"),
    "bhyt_not_yet_valid": ("Thẻ BHYT chưa có hiệu lực", "Health-insurance card is not yet valid"),
    # EU DCC / vaccine passport
    "dcc_prefix_invalid": ("Hộ chiếu vắc xin: sai tiền tố", "Vaccine passport: wrong prefix"),
    "dcc_base45_invalid": DAMAGED,
    "dcc_zlib_invalid": DAMAGED,
    "dcc_cose_invalid": DAMAGED,
    "dcc_cwt_invalid": DAMAGED,
    "dcc_schema_invalid": ("Nội dung hộ chiếu vắc xin không đúng mẫu",
                           "Vaccine passport content is malformed"),
    "dcc_signer_unknown": ("Không rõ đơn vị ký hộ chiếu vắc xin",
                           "Vaccine passport signer is not trusted"),
    "dcc_signature_invalid": ("Chữ ký hộ chiếu vắc xin không hợp lệ",
                              "Vaccine passport signature is invalid"),
    "dcc_key_usage": ("Đơn vị ký không được phép cấp loại chứng nhận này",
                      "Signer may not issue this kind of certificate"),
    "dcc_expired": ("Hộ chiếu vắc xin đã hết hạn", "Vaccine passport has expired"),
    "dcc_not_yet_valid": ("Hộ chiếu vắc xin chưa có hiệu lực", "Vaccine passport is not yet valid"),
    "dcc_validity_missing": ("Hộ chiếu vắc xin thiếu thời hạn", "Vaccine passport has no validity"),
    "dcc_signer_expired": ("Chứng thư ký đã hết hạn", "Signer certificate is not valid now"),
    # Lists the kiosk depends on
    "trust_list_missing": ("Thiếu danh sách tin cậy, chờ cán bộ",
                           "No trust list, an officer will check"),
    "trust_list_stale": ("Danh sách tin cậy đã cũ, chờ cán bộ",
                         "Trust list is out of date, an officer will check"),
    "watchlist_missing": ("Thiếu danh sách cách ly, chờ cán bộ",
                          "No quarantine list, an officer will check"),
    "watchlist_stale": ("Danh sách cách ly đã cũ, chờ cán bộ",
                        "Quarantine list is out of date, an officer will check"),
    "watchlist": WAIT_FOR_OFFICER,
    # Policy
    "kind_not_accepted": ("Loại giấy tờ này không được chấp nhận ở đây",
                          "This document is not accepted here"),
    "certificate_required": ("Cần chứng nhận tiêm chủng, xét nghiệm hoặc khỏi bệnh",
                             "A vaccination, test or recovery certificate is required"),
    "certificate_type_not_accepted": ("Loại chứng nhận này không được chấp nhận ở đây",
                                      "This kind of certificate is not accepted here"),
    "unsigned_id_only": ("Giấy tờ chưa xác thực, chờ cán bộ",
                         "Unverified ID, an officer will check"),
    "vaccination_incomplete": ("Chưa tiêm đủ liều", "Vaccination is not complete"),
    "vaccination_too_recent": ("Mũi tiêm cuối chưa đủ ngày", "Last dose is too recent"),
    "vaccination_too_old": ("Mũi tiêm cuối đã quá lâu", "Last dose is too long ago"),
    "test_positive": WAIT_FOR_OFFICER,
    "test_result_unknown": ("Kết quả xét nghiệm không rõ", "Test result is not readable"),
    "test_too_old": ("Kết quả xét nghiệm đã quá hạn", "Test result is too old"),
    "test_in_future": ("Thời điểm lấy mẫu ở tương lai", "Test sample time is in the future"),
    "recovery_not_valid": ("Chứng nhận khỏi bệnh không còn hiệu lực",
                           "Recovery certificate is not valid now"),
    "officer_override": ("Cán bộ đã quyết định", "Decided by an officer"),
    "internal_error": ("Lỗi hệ thống, chờ cán bộ", "System error, an officer will check"),
}  # fmt: skip

REASONS: dict[str, tuple[str, str]] = {
    code: (unicodedata.normalize("NFC", vi), unicodedata.normalize("NFC", en))
    for code, (vi, en) in _REASONS.items()
}


def message(code: str) -> tuple[str, str]:
    """The (Vietnamese, English) message for a code; an unknown code gets the generic one."""
    return REASONS.get(code, WAIT_FOR_OFFICER)
