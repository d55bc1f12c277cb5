"""The zlib preset dictionary of SHK1 codes: the words Punjab's orders are made of.

A transfer order's QR is mostly school names, posts and places. Plain zlib finds no repeats in
200 bytes of such text, so it saved 13 bytes and the code needed version 17 at level Q. With
these words preloaded, DEFLATE refers back to them instead (a name such as "Govt. Boys Higher
Secondary School" costs a few bytes), and the same order fits version 15-Q with room to spare.

This is zlib's own mechanism (RFC 1950 FDICT): a stream made with the dictionary says so in
its header and names it by its Adler-32 (DICTID), so a reader knows which dictionary to load,
and a stream made without one still reads. Any zlib, in any language, decodes these codes given
the bytes below, which the service also publishes at `GET /signing/qr-dictionary`.

NEVER CHANGE THESE BYTES: every code printed with them would stop verifying. A better
dictionary is a new constant with its own DICTID, kept beside this one for reading.
DEFLATE reaches 32 KiB back and prefers near matches, so the commonest words come last.
"""

from __future__ import annotations

import zlib

_DISTRICTS = (
    "Attock Bahawalnagar Bahawalpur Bhakkar Chakwal Chiniot Dera Ghazi Khan Faisalabad "
    "Gujranwala Gujrat Hafizabad Jhang Jhelum Kasur Khanewal Khushab Layyah Lodhran "
    "Mandi Bahauddin Mianwali Multan Muzaffargarh Nankana Sahib Narowal Okara Pakpattan "
    "Rahim Yar Khan Rajanpur Rawalpindi Sahiwal Sargodha Sheikhupura Sialkot Toba Tek Singh "
    "Vehari Murree Talagang Kot Addu Wazirabad Taunsa "
)
_NAMES = (
    "Muhammad Ahmad Ahmed Ali Khan Akhtar Hussain Iqbal Bibi Fatima Rasheed Imran Shahid Asif "
    "Nadeem Tariq Javed Aslam Akram Bashir Rehman Zafar Saeed Anwar Naveed Kausar Parveen "
    "Shazia Nasreen Rubina Sadia Ayesha Zahid "
)
_POSTS = (
    "(Computer Science) (Mathematics) (English) (Urdu) (Biology) (Physics) (Chemistry) "
    "(General) (Arts) (Islamiat) Senior Subject Specialist Headmistress Headmaster SSE SESE "
    "ESE PET DM AT EST PST SST (Science) "
)
_AUTHORITIES = (
    "DEO (EE-W) DEO (EE-M) DEO (SE) Secretary School Education Department, Punjab DPI (SE) "
    "CEO (DEA) "
)
_SCHOOLS = (
    "Chak No. Mouza Road Colony Bazar Islamia Comprehensive Pilot Secondary School Degree "
    "College Girls Elementary School Girls Primary School Boys Elementary School Boys Primary "
    "School Govt. Girls High School Govt. Boys High School Govt. Girls Higher Secondary School "
    "Govt. Boys Higher Secondary School, Govt. High School No. Town, SED/TR/202"
)

DICTIONARY_V1 = (_DISTRICTS + _NAMES + _POSTS + _AUTHORITIES + _SCHOOLS).encode("ascii")
DICTIONARY_V1_ID = zlib.adler32(DICTIONARY_V1)
