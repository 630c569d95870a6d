"""What the characters of the synthetic dialogue world say: sentences and backchannels per language.

`distill.world.dialogue` draws turns from SENTENCES and listener responses from BACKCHANNELS. The texts are
ours, written for variety of length, rhythm and mouth shapes (bilabials, rounded and open vowels), not
for meaning.
"""

from __future__ import annotations

# language -> the espeak language codes whose voices speak it (accents of one language share its texts)
ACCENTS: dict[str, tuple[str, ...]] = {
    "en": ("en-us", "en-gb", "en-gb-scotland", "en-029"),
    "de": ("de",),
    "fr": ("fr-fr", "fr-be"),
    "es": ("es", "es-419"),
    "it": ("it",),
    "pt": ("pt", "pt-br"),
    "nl": ("nl",),
}

SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "I thought the bus would be here by now.",
        "Maybe we should move the meeting to Monday morning.",
        "Honestly, I have no idea where the blue umbrella went.",
        "Could you pass me the paper by the window?",
        "We painted the boat a bright orange colour last summer.",
        "That is exactly what I was about to say.",
        "The bakery on the corner opens at seven.",
        "Wait, you mean the one with the broken mirror?",
        "My brother bought a map, but we still got lost.",
        "Nobody told me the museum was closed on Tuesdays.",
        "Look, the point is that we need more time.",
        "Remember to water the tomatoes before you go.",
        "I would love a cup of warm milk with honey.",
        "Please bring the big box from the basement.",
        "Who moved my pen? It was right here a moment ago.",
        "Oh, I almost forgot about the football match tonight.",
        "The new plan looks good on paper, but will it work?",
        "Whenever it rains, the puppy hides under my bed.",
    ),
    "de": (
        "Ich habe den Schlüssel wieder im Auto vergessen.",
        "Morgen fahren wir mit dem Boot über den See.",
        "Das Museum ist montags leider geschlossen.",
        "Kannst du mir bitte die Butter geben?",
        "Mein Bruder baut gerade ein kleines Baumhaus.",
        "Wir müssen das Problem heute noch lösen.",
        "Oma backt am Wochenende immer einen Apfelkuchen.",
        "Warum ist der Bus schon wieder so spät?",
        "Im Sommer schwimmen wir oft im Fluss.",
        "Das war wirklich eine gute Idee von dir.",
        "Bitte mach das Fenster zu, es zieht.",
        "Ehrlich gesagt verstehe ich die Frage nicht.",
    ),
    "fr": (
        "Je pense que le train part à midi.",
        "Mon voisin a peint sa porte en bleu.",
        "Tu veux un peu de pain avec la soupe?",
        "Le musée est fermé le mardi, malheureusement.",
        "Nous allons au marché tous les samedis matin.",
        "Attends, tu parles du bateau de Paul?",
        "Il fait beau, profitons-en pour marcher.",
        "Ma mère prépare une tarte aux pommes.",
        "Pourquoi est-ce que personne ne répond?",
        "Bon, on commence par le plus simple.",
        "Le petit chat dort sous la table.",
        "Franchement, je ne m'en souviens plus.",
    ),
    "es": (
        "Mañana vamos a la playa con mi primo.",
        "No encuentro las llaves de la moto.",
        "Mi abuela prepara un pan buenísimo.",
        "¿Puedes bajar un poco la música, por favor?",
        "El museo abre a las nueve de la mañana.",
        "Pues mira, la verdad es que no lo sé.",
        "Compramos un barco pequeño el verano pasado.",
        "Bueno, empezamos por el principio.",
        "Mi perro duerme todo el día en el balcón.",
        "Hoy hace mucho frío para pasear.",
        "Espera, ¿hablas del mapa viejo?",
        "Prefiero el café sin azúcar.",
    ),
    "it": (
        "Domani mattina andiamo al mercato insieme.",
        "Mio fratello ha comprato una barca blu.",
        "Puoi passarmi il pane, per favore?",
        "Il museo è chiuso il lunedì.",
        "Allora, cominciamo dal problema più semplice.",
        "Mamma prepara sempre la pasta al pomodoro.",
        "Aspetta, parli della bicicletta di Paolo?",
        "Oggi piove, meglio restare a casa.",
        "Non mi ricordo dove ho messo gli occhiali.",
        "Il bambino dorme beato sul divano.",
        "Secondo me è una buona idea.",
        "Abbiamo perso il treno per un minuto.",
    ),
    "pt": (
        "Amanhã vamos à praia com o meu primo.",
        "Não encontro as chaves do carro.",
        "A minha avó faz um bolo muito bom.",
        "Podes baixar um pouco a música, por favor?",
        "O museu abre às nove da manhã.",
        "Bem, a verdade é que não sei.",
        "Compramos um barco pequeno no verão passado.",
        "O meu cão dorme o dia todo na varanda.",
        "Hoje está muito frio para passear.",
        "Espera, falas do mapa velho?",
        "Prefiro o café sem açúcar.",
        "Vamos começar pelo princípio.",
    ),
    "nl": (
        "Morgen gaan we met de boot naar het eiland.",
        "Mijn broer heeft een blauwe fiets gekocht.",
        "Kun je me het brood even geven?",
        "Het museum is op maandag gesloten.",
        "Wacht, bedoel je die oude kaart?",
        "Oma bakt elke zondag appeltaart.",
        "Waarom is de bus altijd zo laat?",
        "Vandaag regent het, dus we blijven binnen.",
        "Eerlijk gezegd begrijp ik de vraag niet.",
        "De kleine poes slaapt onder de tafel.",
        "Laten we met het makkelijkste beginnen.",
        "Ik heb mijn sleutels weer verloren.",
    ),
}

# short listener responses, spelled so that espeak voices them: it spells "mm-hm" or "mhm" out letter by
# letter, so the hums are written "um hum" (mm-hm) and "hum" (hmm)
BACKCHANNELS: dict[str, tuple[str, ...]] = {
    "en": ("um hum", "yeah", "right", "uh huh", "okay", "oh", "I see", "hum", "sure"),
    "de": ("ja", "genau", "hm", "stimmt", "achso", "okay", "aha", "ähm"),
    "fr": ("oui", "d'accord", "ah bon", "voilà", "hum", "ouais", "bien sûr", "euh"),
    "es": ("sí", "claro", "vale", "ajá", "ya", "eh", "bueno"),
    "it": ("sì", "certo", "esatto", "ah ecco", "eh", "già", "va bene"),
    "pt": ("sim", "pois", "claro", "pois é", "hum", "certo", "ah"),
    "nl": ("ja", "precies", "klopt", "oké", "inderdaad", "o ja", "nou", "hè"),
}
