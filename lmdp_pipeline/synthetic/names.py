"""Word lists for the direct identifiers a real delivery carries (names, addresses).

They exist so that ingestion has real identifying columns to drop; none of it is
ever stored past the landing zone.
"""

LAST_NAMES = (
    "Schmit", "Muller", "Weber", "Wagner", "Hoffmann", "Thill", "Schmitz", "Schroeder", "Reuter", "Klein",
    "Kieffer", "Becker", "Kremer", "Faber", "Meyer", "Steffen", "Welter", "Schiltz", "Majerus", "Hansen",
    "Da Silva", "Dos Santos", "Pereira", "Ferreira", "Rodrigues", "Fernandes", "Goncalves", "Gomes", "Lopes",
    "Marques", "Alves", "Martins", "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit",
    "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Peeters", "Janssens", "Maes",
    "Jacobs", "Mertens", "Willems", "Schneider", "Fischer", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi",
)
FIRST_NAMES_MALE = (
    "Luc", "Marc", "Paul", "Jean", "Michel", "Claude", "Tom", "Ben", "Max", "Noah", "Gilles", "Pierre",
    "Joao", "Jose", "Antonio", "Carlos", "Rui", "Pedro", "Miguel", "Thomas", "Nicolas", "Julien", "David",
    "Laurent", "Stefan", "Andreas", "Marco", "Luca", "Mohamed", "Ahmed", "Kevin", "Yves", "Raoul", "Fernand",
)
FIRST_NAMES_FEMALE = (
    "Marie", "Anne", "Sophie", "Claudine", "Nathalie", "Sandra", "Carole", "Lea", "Emma", "Mia", "Sarah",
    "Maria", "Ana", "Sofia", "Ines", "Beatriz", "Catarina", "Julie", "Isabelle", "Laura", "Camille", "Chantal",
    "Martine", "Monique", "Sabine", "Petra", "Giulia", "Chiara", "Fatima", "Amina", "Christiane", "Josiane",
)
STREETS = (
    "rue de la Gare", "route d'Arlon", "rue Principale", "avenue de la Liberté", "rue de l'Église",
    "rue du Moulin", "Grand-Rue", "rue des Jardins", "boulevard Royal", "rue de Luxembourg",
    "rue du Château", "rue de la Forêt", "rue des Champs", "route de Thionville", "rue de Hollerich",
    "rue de Bettembourg", "rue du Parc", "rue des Prés", "avenue Pasteur", "rue de l'École",
)
FOREIGN_LOCALITIES = {
    "FR": ("F-57100 Thionville", "F-57000 Metz", "F-54400 Longwy", "F-57330 Hettange-Grande", "F-57570 Cattenom"),
    "BE": ("B-6700 Arlon", "B-6780 Messancy", "B-6790 Aubange", "B-6600 Bastogne"),
    "DE": ("D-54290 Trier", "D-66706 Perl", "D-54439 Saarburg", "D-54294 Konz"),
    "XX": ("NL-1012 Amsterdam", "PT-4000 Porto", "IT-20121 Milano"),
}
COMPANY_WORDS = (
    "Construction", "Services", "Consulting", "Transports", "Immobilière", "Informatique", "Distribution",
    "Boulangerie", "Garage", "Nettoyage", "Finance", "Logistique", "Restaurant", "Pharmacie", "Santé",
)
COMPANY_SUFFIX_BY_LEGAL_FORM = {
    "sa": "S.A.", "sarl": "S.à r.l.", "sarls": "S.à r.l.-S", "secs": "S.e.c.s.", "asbl": "a.s.b.l.",
    "individual": "", "public": "", "household": "",
}
